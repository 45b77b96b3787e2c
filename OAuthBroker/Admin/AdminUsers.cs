using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http.HttpResults;
using OAuthBroker.Audit;
using OAuthBroker.Lifecycle;
using OAuthBroker.Users;
using OAuthBroker.Web;

namespace OAuthBroker.Admin;

/// <summary>What the admin sees of one user: the instances they signed in to, and their tokens per app and scope set.</summary>
public sealed record UserConnections(long UserId, long GitHubId, string Login, IReadOnlyList<UserInstance> Instances, IReadOnlyList<TokenLimitRisk> NearTokenLimit);

/// <summary>What ending a user's access did: the refresh tokens marked, and the instances whose tokens the broker cannot reach.</summary>
public sealed record EndedAccess(string Login, int RefreshTokensMarked, IReadOnlyList<string> InstancesOutOfReach);

/// <summary>
/// The admin's view of users: who nears GitHub's ten tokens per user, app and scope set, where one user signed in, and
/// ending a user's access. GitHub revokes a user's whole grant only when shown one of that user's live tokens, and the
/// broker keeps none; so ending access marks the user's refresh tokens, and the next refresh of any of them (at the
/// latest when the instance's 8-hour token expires) revokes the grant at GitHub instead of renewing it. Tokens that
/// never expire and are not refreshed are beyond the broker's reach: the page says which instances hold them.
/// </summary>
public static class AdminUsers
{
    public const int NearLimitListed = 50;

    public static void Map(RouteGroupBuilder admin)
    {
        admin.MapGet("/users", ShowAsync);
        admin.MapPost("/users/{login}/end-access", EndAccessFromPageAsync);
        admin.MapGet("/api/users/{login}", GetAsync);
        admin.MapPost("/api/users/{login}/end-access", EndAccessAsync);
    }

    public static async Task<Results<Ok<UserConnections>, ProblemHttpResult>> GetAsync(string login, IUserStore users, CancellationToken cancellationToken) =>
        await FindAsync(login, users, cancellationToken) is { } found ? TypedResults.Ok(found) : NotFound(login);

    public static async Task<Results<Ok<EndedAccess>, ProblemHttpResult>> EndAccessAsync(
        string login, HttpContext context, IUserStore users, IRefreshTokenRepository refreshTokens, AuditLog audit, TimeProvider time, CancellationToken cancellationToken) =>
        await EndAsync(login, context, users, refreshTokens, audit, time, cancellationToken) is { } ended ? TypedResults.Ok(ended) : NotFound(login);

    private static async Task<UserConnections?> FindAsync(string login, IUserStore users, CancellationToken cancellationToken)
    {
        if (!GitHub.GitHubStrings.IsLogin(login) || await users.FindByLoginAsync(login, cancellationToken) is not { } user)
        {
            return null;
        }

        var instances = await users.ListInstancesAsync(user.Id, cancellationToken);
        var crowded = instances.GroupBy(row => (row.Provider, row.Scope))
            .Select(group => new TokenLimitRisk(user.Id, user.Login, group.Key.Provider, group.Key.Scope, group.Sum(row => row.Tokens), group.Count()))
            .Where(risk => risk.Tokens >= Account.AccountPage.TokenLimitWarning)
            .ToList();
        return new UserConnections(user.Id, user.GitHubId, user.Login, instances, crowded);
    }

    private static async Task<EndedAccess?> EndAsync(
        string login, HttpContext context, IUserStore users, IRefreshTokenRepository refreshTokens, AuditLog audit, TimeProvider time, CancellationToken cancellationToken)
    {
        if (await FindAsync(login, users, cancellationToken) is not { } found)
        {
            return null;
        }

        var marked = await refreshTokens.RequestGrantRevocationAsync(found.UserId, time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
        var allowlist = context.RequestServices.GetRequiredService<Allowlist.AllowlistProvider>().Current;
        var outOfReach = found.Instances.Select(row => row.InstanceId).Distinct(StringComparer.Ordinal)
            .Where(id => !allowlist.Instances.TryGetValue(id, out var instance) || !instance.Refresh || !instance.DeliversAccessToken)
            .Order(StringComparer.Ordinal)
            .ToList();
        await audit.RecordAdminAsync(context.User.Identity?.Name ?? "unknown", "end_user_access", null, null,
            new System.Text.Json.Nodes.JsonObject { ["user"] = found.Login, ["refreshTokensMarked"] = marked }, ClientAddress.Of(context), cancellationToken);
        return new EndedAccess(found.Login, marked, outOfReach);
    }

    private static async Task<IResult> ShowAsync(HttpContext context, string? login, IUserStore users, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        var body = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"<form method=\"get\" action=\"{HtmlPage.Encode(context.BrowserPath("/admin/users"))}\"><label>GitHub login <input name=\"login\" value=\"{HtmlPage.Encode(login)}\"></label> <button>Show</button></form>");
        if (login is { Length: > 0 })
        {
            var found = await FindAsync(login, users, cancellationToken);
            if (found is null)
            {
                body.Append(CultureInfo.InvariantCulture, $"<p id=\"not-found\">No user {HtmlPage.Encode(login)} has signed in through this broker.</p>");
            }
            else
            {
                body.Append(CultureInfo.InvariantCulture, $"<h2>{HtmlPage.Encode(found.Login)} (GitHub id {found.GitHubId})</h2>")
                    .Append(InstanceTable(found.Instances));
                foreach (var risk in found.NearTokenLimit)
                {
                    body.Append(CultureInfo.InvariantCulture, $"<p class=\"warning\">{risk.Tokens} tokens through {HtmlPage.Encode(risk.Provider)} with the scopes <code>{HtmlPage.Encode(risk.Scope)}</code>: GitHub keeps ten per user, app and scope set and revokes the oldest beyond, signing the user out of the instance used least recently.</p>");
                }

                var tokens = antiforgery.GetAndStoreTokens(context);
                body.Append("<h3>End this user's access</h3><p>GitHub revokes a user's authorization only when shown one of their live tokens, and the broker keeps none. Ending access marks the user's refresh tokens: the next refresh of any of them revokes their whole authorization at GitHub (every instance is cut) instead of renewing it. Instances without the refresh relay hold tokens the broker cannot reach; the user can disconnect them on <code>/account</code>.</p>")
                    .Append(CultureInfo.InvariantCulture, $"<form method=\"post\" action=\"{HtmlPage.Encode(context.BrowserPath($"/admin/users/{Uri.EscapeDataString(found.Login)}/end-access"))}\"><input type=\"hidden\" name=\"{HtmlPage.Encode(tokens.FormFieldName)}\" value=\"{HtmlPage.Encode(tokens.RequestToken)}\"><button id=\"end-access\">End {HtmlPage.Encode(found.Login)}'s access</button></form>");
            }
        }

        var near = await users.FindNearTokenLimitAsync(Account.AccountPage.TokenLimitWarning, NearLimitListed, cancellationToken);
        body.Append(CultureInfo.InvariantCulture, $"<h2>Near GitHub's ten tokens per user, app and scope set ({near.Count})</h2>");
        if (near.Count == 0)
        {
            body.Append("<p id=\"near-limit-none\">No user has had eight or more tokens issued for one app and scope set.</p>");
        }
        else
        {
            body.Append("<table id=\"near-limit\"><tr><th>User</th><th>App</th><th>Scopes</th><th>Tokens</th><th>Instances</th></tr>");
            foreach (var risk in near)
            {
                body.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"{HtmlPage.Encode(context.BrowserPath("/admin/users?login=" + Uri.EscapeDataString(risk.Login)))}\">{HtmlPage.Encode(risk.Login)}</a></td><td>{HtmlPage.Encode(risk.Provider)}</td><td>{HtmlPage.Encode(risk.Scope)}</td><td>{risk.Tokens}</td><td>{risk.Instances}</td></tr>");
            }

            body.Append("</table>");
        }

        body.Append(CultureInfo.InvariantCulture, $"<p><a href=\"{HtmlPage.Encode(context.BrowserPath("/admin"))}\">Back to the admin page</a></p>");
        return HtmlPage.Render("Users", body.ToString());
    }

    private static async Task<IResult> EndAccessFromPageAsync(
        string login, HttpContext context, IUserStore users, IRefreshTokenRepository refreshTokens, AuditLog audit, TimeProvider time, CancellationToken cancellationToken)
    {
        if (await EndAsync(login, context, users, refreshTokens, audit, time, cancellationToken) is not { } ended)
        {
            return HtmlPage.Error("Not found", $"No user {login} has signed in through this broker.", StatusCodes.Status404NotFound);
        }

        var outOfReach = ended.InstancesOutOfReach.Count == 0 ? "" :
            $"<p id=\"out-of-reach\">Out of the broker's reach (no refresh relay): {HtmlPage.Encode(string.Join(", ", ended.InstancesOutOfReach))}. Their tokens last until they expire, the user disconnects on <code>/account</code>, or you revoke all user tokens of the app on GitHub.</p>";
        return HtmlPage.Render("Access ended",
            $"<p id=\"ended\">{ended.RefreshTokensMarked} refresh token(s) of {HtmlPage.Encode(ended.Login)} are marked: the next refresh of any of them revokes the user's authorization at GitHub.</p>{outOfReach}"
            + $"<p><a href=\"{HtmlPage.Encode(context.BrowserPath("/admin/users?login=" + Uri.EscapeDataString(ended.Login)))}\">Back to the user</a></p>");
    }

    private static string InstanceTable(IReadOnlyList<UserInstance> instances)
    {
        var table = new StringBuilder("<table id=\"user-instances\"><tr><th>Instance</th><th>App</th><th>Scopes</th><th>Tokens issued</th><th>Last sign-in (UTC)</th></tr>");
        foreach (var row in instances)
        {
            table.Append(CultureInfo.InvariantCulture, $"<tr><td>{HtmlPage.Encode(row.InstanceId)}</td><td>{HtmlPage.Encode(row.Provider)}</td><td>{HtmlPage.Encode(row.Scope)}</td><td>{row.Tokens}</td><td>{DateTimeOffset.FromUnixTimeMilliseconds(row.LastAt):yyyy-MM-dd HH:mm}</td></tr>");
        }

        return table.Append("</table>").ToString();
    }

    private static ProblemHttpResult NotFound(string login) =>
        TypedResults.Problem($"No user '{login}' has signed in through this broker.", statusCode: StatusCodes.Status404NotFound, title: "Not found");
}
