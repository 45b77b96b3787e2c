using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using OAuthBroker.Audit;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Login;
using OAuthBroker.Users;
using OAuthBroker.Web;

namespace OAuthBroker.Account;

/// <summary>
/// <c>/account</c>: a user signs in through GitHub, sees the instances they signed in to through the broker, and can
/// disconnect from all of them at once by revoking their whole authorization of the broker's app at GitHub
/// (<c>DELETE /applications/{client_id}/grant</c>). That cuts every instance at once, so it is the user's call, not an
/// instance's. The broker keeps no GitHub token for it: the grant is revoked with a token from a fresh sign-in, in the
/// request that receives it, and the token of a sign-in to view the page is revoked as soon as it has said who signed in.
/// </summary>
public static partial class AccountPage
{
    /// <summary>The pending logins of this page use pseudo-instance ids no allowlist entry can have (ids start with a letter or digit).</summary>
    private const string PseudoInstancePrefix = "__account__:";
    private const string ViewIntent = "view";
    private const string DisconnectIntent = "disconnect";
    private const string SessionPurpose = "OAuthBroker.Account.Session.v1";

    /// <summary>How long the page remembers who signed in; the session holds the GitHub id and login only, never a token.</summary>
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(15);

    /// <summary>Past this many tokens for one app and scope set, the page warns: GitHub keeps ten and revokes the oldest beyond.</summary>
    public const int TokenLimitWarning = 8;

    public const int GitHubTokenLimit = 10;

    public static IEndpointRouteBuilder MapAccount(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/account").WithTags("Account");
        group.MapGet("", ShowAsync);
        group.MapGet("/sign-in", SignInAsync);
        group.MapPost("/disconnect", DisconnectAsync);
        group.MapPost("/sign-out", SignOut);
        return endpoints;
    }

    public static bool Handles(string pseudoInstanceId) => pseudoInstanceId.StartsWith(PseudoInstancePrefix, StringComparison.Ordinal);

    private static async Task<IResult> ShowAsync(
        HttpContext context, IUserStore users, GitHubIntegrations integrations, IAntiforgery antiforgery, IDataProtectionProvider dataProtection, IOptions<BrokerOptions> broker, CancellationToken cancellationToken)
    {
        context.Response.Headers.CacheControl = "no-store";
        var signedIn = ReadSession(context, dataProtection, broker.Value);
        if (signedIn is null)
        {
            var signIn = HtmlPage.Encode(context.BrowserPath("/account/sign-in"));
            return HtmlPage.Render("Your connections",
                "<p>Sign in with GitHub to see the applications you signed in to through this broker, and to disconnect from them.</p>"
                + $"<p><a class=\"button\" id=\"sign-in\" href=\"{signIn}\">Sign in with GitHub</a></p>");
        }

        var (gitHubId, login) = signedIn.Value;
        var user = await users.FindByGitHubIdAsync(gitHubId, cancellationToken);
        var rows = user is null ? [] : await users.ListInstancesAsync(user.Id, cancellationToken);
        var body = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"<p>Signed in as <strong id=\"account-login\">{HtmlPage.Encode(login)}</strong>.</p>");
        if (rows.Count == 0)
        {
            body.Append("<p id=\"no-instances\">You have not signed in to any application through this broker (or you disconnected since).</p>");
        }
        else
        {
            body.Append("<table id=\"instances\"><thead><tr><th>Application</th><th>Through</th><th>Scopes</th><th>Sign-ins</th><th>Last sign-in (UTC)</th></tr></thead><tbody>");
            foreach (var row in rows)
            {
                body.Append(CultureInfo.InvariantCulture, $"<tr><td>{HtmlPage.Encode(row.InstanceId)}</td><td>{HtmlPage.Encode(AppName(row.Provider))}</td><td>{HtmlPage.Encode(row.Scope.Length == 0 ? "(the app's permissions)" : row.Scope)}</td><td>{row.Tokens}</td><td>{DateTimeOffset.FromUnixTimeMilliseconds(row.LastAt):yyyy-MM-dd HH:mm}</td></tr>");
            }

            body.Append("</tbody></table>");
            foreach (var crowded in rows.GroupBy(row => (row.Provider, row.Scope)).Where(group => group.Sum(row => row.Tokens) >= TokenLimitWarning))
            {
                body.Append(CultureInfo.InvariantCulture,
                    $"<p class=\"warning\">GitHub keeps at most {GitHubTokenLimit} tokens per person, app and set of scopes, and revokes the oldest beyond that. You have signed in {crowded.Sum(row => row.Tokens)} times through {HtmlPage.Encode(AppName(crowded.Key.Provider))} with the scopes <code>{HtmlPage.Encode(crowded.Key.Scope)}</code>: the next sign-ins may sign you out of the applications you used least recently.</p>");
            }
        }

        body.Append("<h2>Disconnect from every application</h2>")
            .Append("<p>This revokes your authorization of the broker's app on GitHub: every token it issued to you, for every application above, stops working at once, and each application asks you to sign in again. You pass through GitHub's sign-in once more first, so that GitHub knows it is you asking.</p>");
        foreach (var integration in Integrations(integrations))
        {
            body.Append(Form(context, antiforgery, "/account/disconnect",
                $"<input type=\"hidden\" name=\"provider\" value=\"{integration.Provider}\"><button id=\"disconnect-{integration.Provider}\">Disconnect from all ({HtmlPage.Encode(AppName(integration.Provider))})</button>"));
        }

        // "Disconnect" answers with a redirect to GitHub's sign-in, which Chromium checks against this page's form-action.
        HtmlPage.AllowFormsLeadingTo(context.Response, Integrations(integrations).Select(integration => integration.AuthorizeEndpoint));
        body.Append(CultureInfo.InvariantCulture, $"<p>You can also review the app on GitHub: <a href=\"{HtmlPage.Encode(integrations.OAuthApp.ConnectionSettingsPage)}\">Settings → Applications</a>.</p>")
            .Append(Form(context, antiforgery, "/account/sign-out", "<button id=\"sign-out\">Sign out</button>"));
        return HtmlPage.Render("Your connections", body.ToString());
    }

    private static Task<IResult> SignInAsync(HttpContext context, PendingLoginStore logins, GitHubIntegrations integrations, IOptions<BrokerOptions> broker, CancellationToken cancellationToken) =>
        LoginEndpoints.BeginAuthorizationAsync(context, logins, integrations.OAuthApp, broker.Value, PseudoInstancePrefix + ViewIntent + ":" + GitHubProviders.OAuthApp, "/account", null, "read:user", InstanceResponse.Query, cancellationToken);

    private static async Task<IResult> DisconnectAsync(
        HttpContext context, PendingLoginStore logins, GitHubIntegrations integrations, IAntiforgery antiforgery, IDataProtectionProvider dataProtection, IOptions<BrokerOptions> broker, CancellationToken cancellationToken)
    {
        if (!await antiforgery.IsRequestValidAsync(context))
        {
            return HtmlPage.Error("Not disconnected", "This form is out of date (its CSRF token does not match); go back to /account, reload and try again.");
        }

        if (ReadSession(context, dataProtection, broker.Value) is null)
        {
            return HtmlPage.Error("Not disconnected", "Your sign-in on this page has expired; go back to /account and sign in again.", StatusCodes.Status401Unauthorized);
        }

        var form = await context.Request.ReadFormAsync(cancellationToken);
        if (Integrations(integrations).FirstOrDefault(integration => integration.Provider == form["provider"]) is not { } chosen)
        {
            return HtmlPage.Error("Not disconnected", "Choose one of the broker's GitHub apps.");
        }

        // A fresh GitHub sign-in proves who is asking, and its token is what GitHub's grant revocation takes.
        return await LoginEndpoints.BeginAuthorizationAsync(context, logins, chosen, broker.Value, PseudoInstancePrefix + DisconnectIntent + ":" + chosen.Provider, "/account", null, "read:user", InstanceResponse.Query, cancellationToken);
    }

    private static RedirectHttpResult SignOut(HttpContext context, IOptions<BrokerOptions> broker)
    {
        var secure = BrowserBinding.IsSecure(context, broker.Value);
        context.Response.Cookies.Delete(SessionCookie(secure, broker.Value), CookieOptions(secure, broker.Value));
        return TypedResults.Redirect(context.BrowserPath("/account"));
    }

    /// <summary>GitHub's answer to this page's sign-in, passed on by the login callback after the state and browser checks.</summary>
    public static async Task<IResult> CompleteAsync(HttpContext context, PendingLogin login, string code, GitHubClient gitHub, BrokerOptions broker, AuditLog audit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(login);
        var services = context.RequestServices;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("OAuthBroker.Account.AccountPage");
        var parts = login.InstanceId[PseudoInstancePrefix.Length..].Split(':');
        var integrations = services.GetRequiredService<GitHubIntegrations>();
        GitHubIntegrationOptions? integration = parts.Length == 2 && parts[1] == GitHubProviders.GitHubApp ? integrations.GitHubApp : integrations.OAuthApp;
        if (parts.Length != 2 || integration is null)
        {
            return HtmlPage.Error("Sign-in failed", "This sign-in no longer matches the broker's configuration; start again at /account.");
        }

        var token = code.Length > 0 ? await gitHub.ExchangeCodeAsync(integration, code, login.CodeVerifier, broker.CallbackUrl, cancellationToken) : default;
        var user = token.Value is null ? default : await gitHub.GetUserAsync(integration, token.Value, cancellationToken);
        if (user.Value is not { } gitHubUser)
        {
            return HtmlPage.Error("Sign-in failed", "GitHub did not complete the sign-in; go back to /account and try again.", StatusCodes.Status502BadGateway);
        }

        var secure = BrowserBinding.IsSecure(context, broker);
        var clientIp = ClientAddress.Of(context);
        if (parts[0] != DisconnectIntent)
        {
            // The page needs to know who signed in, not to call GitHub: the token is ended at once, so it neither
            // lingers nor takes a place among the user's ten for this app.
            _ = await gitHub.RevokeAsync(integration, token.Value!.AccessToken, cancellationToken);
            WriteSession(context, services.GetRequiredService<IDataProtectionProvider>(), broker, secure, gitHubUser);
            return TypedResults.Redirect(broker.BrowserPath("/account"));
        }

        if (await gitHub.RevokeGrantAsync(integration, token.Value!.AccessToken, cancellationToken) is { } failure)
        {
            Log.GrantRevocationFailed(logger, gitHubUser.Login, integration.Provider, failure.Reason);
            await audit.RecordAccountAsync(gitHubUser.Login, "grant_revoke_failed", $"{integration.Provider}: {failure.Reason}", clientIp, cancellationToken);
            return HtmlPage.Error("Not disconnected", "GitHub did not revoke the authorization; nothing changed. Go back to /account and try again shortly.", StatusCodes.Status502BadGateway);
        }

        var users = services.GetRequiredService<IUserStore>();
        if (await users.FindByGitHubIdAsync(gitHubUser.Id, cancellationToken) is { } brokerUser)
        {
            await users.ForgetInstancesAsync(brokerUser.Id, integration.Provider, cancellationToken);
        }

        Log.GrantRevoked(logger, gitHubUser.Login, integration.Provider);
        await audit.RecordAccountAsync(gitHubUser.Login, "grant_revoked", integration.Provider, clientIp, cancellationToken);
        WriteSession(context, services.GetRequiredService<IDataProtectionProvider>(), broker, secure, gitHubUser);
        return HtmlPage.Render("Disconnected",
            $"<p id=\"disconnected\">GitHub revoked {HtmlPage.Encode(gitHubUser.Login)}'s authorization of {HtmlPage.Encode(AppName(integration.Provider))}: every token it issued to you has stopped working. The applications you signed in to through the broker will ask you to sign in again.</p>"
            + $"<p><a href=\"{HtmlPage.Encode(broker.BrowserPath("/account"))}\">Back to your connections</a></p>");
    }

    private static IEnumerable<GitHubIntegrationOptions> Integrations(GitHubIntegrations integrations) =>
        integrations.GitHubApp is { } app ? [integrations.OAuthApp, app] : [integrations.OAuthApp];

    private static string AppName(string provider) => provider == GitHubProviders.GitHubApp ? "the broker's GitHub App" : "the broker's GitHub OAuth App";

    private static string Form(HttpContext context, IAntiforgery antiforgery, string action, string innerHtml)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        return $"<form method=\"post\" action=\"{HtmlPage.Encode(context.BrowserPath(action))}\"><input type=\"hidden\" name=\"{HtmlPage.Encode(tokens.FormFieldName)}\" value=\"{HtmlPage.Encode(tokens.RequestToken)}\">{innerHtml}</form>";
    }

    private static string SessionCookie(bool secure, BrokerOptions broker) => broker.CookieName("oab-account", secure);

    private static CookieOptions CookieOptions(bool secure, BrokerOptions broker) => new()
    {
        HttpOnly = true,
        Secure = secure,
        // Lax: the cookie is set on the answer to GitHub's redirect and must come with the redirect to /account.
        SameSite = SameSiteMode.Lax,
        Path = broker.CookiePath,
        IsEssential = true,
    };

    private static void WriteSession(HttpContext context, IDataProtectionProvider dataProtection, BrokerOptions broker, bool secure, GitHubUser user)
    {
        var protector = dataProtection.CreateProtector(SessionPurpose).ToTimeLimitedDataProtector();
        var value = protector.Protect(string.Create(CultureInfo.InvariantCulture, $"{user.Id}\n{user.Login}"), SessionLifetime);
        var options = CookieOptions(secure, broker);
        options.MaxAge = SessionLifetime;
        context.Response.Cookies.Append(SessionCookie(secure, broker), value, options);
    }

    private static (long GitHubId, string Login)? ReadSession(HttpContext context, IDataProtectionProvider dataProtection, BrokerOptions broker)
    {
        var secure = BrowserBinding.IsSecure(context, broker);
        if (context.Request.Cookies[SessionCookie(secure, broker)] is not { Length: > 0 and < 4096 } value)
        {
            return null;
        }

        try
        {
            var parts = dataProtection.CreateProtector(SessionPurpose).ToTimeLimitedDataProtector().Unprotect(value).Split('\n');
            return parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? (id, parts[1]) : null;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            // Expired, tampered with, or from a key ring the broker no longer has: signed out.
            return null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 9001, Level = LogLevel.Information, Message = "GitHub user {GitHubLogin} revoked their authorization of the {Provider} on /account")]
        public static partial void GrantRevoked(ILogger logger, string gitHubLogin, string provider);

        [LoggerMessage(EventId = 9002, Level = LogLevel.Warning, Message = "GitHub did not revoke {GitHubLogin}'s authorization of the {Provider}: {Reason}")]
        public static partial void GrantRevocationFailed(ILogger logger, string gitHubLogin, string provider, string reason);
    }
}
