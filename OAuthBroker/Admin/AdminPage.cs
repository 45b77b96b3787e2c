using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using OAuthBroker.Allowlist;
using OAuthBroker.Audit;
using OAuthBroker.Web;

namespace OAuthBroker.Admin;

/// <summary>
/// /admin: a server-rendered page with plain HTML forms (no script, no build step), writing through the same
/// validated, atomic editor as the API. Every form carries the antiforgery token and the ETag it was rendered from.
/// </summary>
public static class AdminPage
{
    public static void Map(RouteGroupBuilder admin)
    {
        admin.MapGet("", ShowAsync);
        admin.MapGet("/instances/{id}", ShowEditAsync);
        admin.MapPost("/instances", AddAsync);
        admin.MapPost("/instances/{id}", SaveAsync);
        admin.MapPost("/instances/{id}/delete", DeleteAsync);
        admin.MapPost("/instances/{id}/disable", (string id, HttpContext context, AllowlistEditor editor, AuditLog audit, IAntiforgery antiforgery, CancellationToken cancellationToken) =>
            SetDisabledAsync(id, disabled: true, context, editor, audit, antiforgery, cancellationToken));
        admin.MapPost("/instances/{id}/enable", (string id, HttpContext context, AllowlistEditor editor, AuditLog audit, IAntiforgery antiforgery, CancellationToken cancellationToken) =>
            SetDisabledAsync(id, disabled: false, context, editor, audit, antiforgery, cancellationToken));
        // Ends the session server-side too (a copy of the cookie is worthless after), then a page that does not sign in
        // again: 303, so the browser follows with a GET (RFC 9700 4.12).
        admin.MapPost("/logout", async (HttpContext context, AdminSessionStore sessions, CancellationToken cancellationToken) =>
        {
            await sessions.RevokeAsync(context.User.FindFirst(AdminAuthentication.SessionIdClaim)?.Value, cancellationToken);
            await context.SignOutAsync(AdminAuthentication.SessionScheme);
            context.Response.Headers.Location = context.BrowserPath("/admin/signed-out");
            return TypedResults.StatusCode(StatusCodes.Status303SeeOther);
        });
    }

    private static async Task<IResult> ShowAsync(
        HttpContext context, string? check, AllowlistEditor editor, AllowlistProvider allowlist, AuditLog audit, IAntiforgery antiforgery, Users.IUserStore users, Webhooks.IWebhookStore webhooks, CancellationToken cancellationToken)
    {
        var content = await editor.ReadAsync(cancellationToken);
        var recent = await audit.RecentLoginsAsync(5, cancellationToken);
        var body = new StringBuilder();
        body.Append(CultureInvariant($"<p>Signed in as <strong>{HtmlPage.Encode(context.User.Identity?.Name)}</strong>.</p>"));
        body.Append(Form(context, antiforgery, "/admin/logout", content.ETag, "<button>Sign out</button>"));
        body.Append(await AdminDashboard.RenderAsync(context, allowlist.Current, audit, users, webhooks, recent, cancellationToken));
        body.Append(CultureInvariant($"<p><a id=\"users\" href=\"{HtmlPage.Encode(context.BrowserPath("/admin/users"))}\">Users</a>: where a user signed in, who nears GitHub's ten tokens per app and scope set, ending a user's access.</p>"));
        body.Append(CultureInvariant($"<p><a id=\"webhooks\" href=\"{HtmlPage.Encode(context.BrowserPath("/admin/webhooks"))}\">Webhooks</a>: GitHub App events relayed to instances, dead letters and redelivery.</p>"));
        if (allowlist.Status.IsStale)
        {
            body.Append(CultureInvariant($"<p><strong>The current allowlist was refused; the last good one is served.</strong></p><pre>{HtmlPage.Encode(allowlist.Status.Error)}</pre>"));
        }

        body.Append(CultureInvariant($"<h2>Test a redirect URI</h2><form method=\"get\" action=\"{HtmlPage.Encode(context.BrowserPath("/admin"))}\"><input name=\"check\" size=\"60\" value=\""))
            .Append(HtmlPage.Encode(check)).Append("\"> <button>Check</button></form>");
        if (check is not null)
        {
            body.Append(CheckResultHtml(allowlist.Current, check));
        }

        body.Append(CultureInvariant($"<h2>Instances ({content.Instances.Count})</h2><table><tr><th>Instance</th><th>Redirect URIs</th><th>Token</th><th>Recent logins</th><th></th></tr>"));
        foreach (var entry in content.Instances.OfType<JsonObject>())
        {
            var id = (string?)entry["id"] ?? "";
            var logins = string.Join("<br>", recent[id].Select(login =>
                $"{login.At:yyyy-MM-dd HH:mm} {HtmlPage.Encode(login.Action)}{(login.Count > 1 ? $" ×{login.Count}" : "")} {HtmlPage.Encode(login.Actor)}"));
            body.Append(CultureInvariant($"<tr><td><a href=\"{HtmlPage.Encode(context.BrowserPath("/admin/instances/" + Uri.EscapeDataString(id)))}\">{HtmlPage.Encode(id)}</a></td>"))
                .Append(CultureInvariant($"<td>{string.Join("<br>", Strings(entry["redirectUris"]).Select(HtmlPage.Encode))}</td>"))
                .Append(CultureInvariant($"<td>{HtmlPage.Encode(KeySummary(entry))}</td><td>{logins}</td>"))
                .Append("<td>")
                .Append(IsDisabled(entry)
                    ? "<strong class=\"disabled\">Disabled</strong>" + Form(context, antiforgery, $"/admin/instances/{Uri.EscapeDataString(id)}/enable", content.ETag, $"<button>Enable {HtmlPage.Encode(id)}</button>")
                    : Form(context, antiforgery, $"/admin/instances/{Uri.EscapeDataString(id)}/disable", content.ETag, $"<button>Disable {HtmlPage.Encode(id)}</button>"))
                .Append(Form(context, antiforgery, $"/admin/instances/{Uri.EscapeDataString(id)}/delete", content.ETag, $"<button>Remove {HtmlPage.Encode(id)}</button>")).Append("</td></tr>");
        }

        body.Append("</table><h2>Add an instance</h2>").Append(InstanceForm(context, antiforgery, "/admin/instances", content.ETag, null));
        return HtmlPage.Render("OAuthBroker admin", body.ToString());
    }

    private static async Task<Microsoft.AspNetCore.Http.HttpResults.ContentHttpResult> ShowEditAsync(string id, HttpContext context, AllowlistEditor editor, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        var content = await editor.ReadAsync(cancellationToken);
        return content.Find(id) is { } entry
            ? HtmlPage.Render($"Edit {id}", InstanceForm(context, antiforgery, $"/admin/instances/{Uri.EscapeDataString(id)}", content.ETag, entry) + $"<p><a href=\"{HtmlPage.Encode(context.BrowserPath("/admin"))}\">Back</a></p>")
            : HtmlPage.Error("Not found", $"There is no instance '{id}'.", StatusCodes.Status404NotFound);
    }

    private static async Task<IResult> AddAsync(HttpContext context, AllowlistEditor editor, AuditLog audit, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        var form = await context.Request.ReadFormAsync(cancellationToken);
        var (entry, secret, clientSecret, error) = EntryFromForm(form, existing: null);
        var outcome = entry is null ? null : await editor.AddAsync(entry, form["etag"], cancellationToken);
        return await FinishAsync(context, audit, antiforgery, "create", (string?)form["id"], outcome, error, secret, "/admin/instances", form, cancellationToken, clientSecret);
    }

    private static async Task<IResult> SaveAsync(string id, HttpContext context, AllowlistEditor editor, AuditLog audit, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        var form = await context.Request.ReadFormAsync(cancellationToken);
        var (entry, secret, clientSecret, error) = EntryFromForm(form, (await editor.ReadAsync(cancellationToken)).Find(id));
        var outcome = entry is null ? null : await editor.ReplaceAsync(id, entry, form["etag"], cancellationToken);
        return await FinishAsync(context, audit, antiforgery, "replace", id, outcome, error, secret, $"/admin/instances/{Uri.EscapeDataString(id)}", form, cancellationToken, clientSecret);
    }

    private static async Task<IResult> DeleteAsync(string id, HttpContext context, AllowlistEditor editor, AuditLog audit, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        var form = await context.Request.ReadFormAsync(cancellationToken);
        var outcome = await editor.RemoveAsync(id, form["etag"], cancellationToken);
        return await FinishAsync(context, audit, antiforgery, "delete", id, outcome, null, null, "/admin", form, cancellationToken);
    }

    private static async Task<IResult> SetDisabledAsync(string id, bool disabled, HttpContext context, AllowlistEditor editor, AuditLog audit, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        var form = await context.Request.ReadFormAsync(cancellationToken);
        var outcome = await editor.SetDisabledAsync(id, disabled, form["etag"], cancellationToken);
        return await FinishAsync(context, audit, antiforgery, disabled ? "disable" : "enable", id, outcome, null, null, "/admin", form, cancellationToken);
    }

    private static async Task<IResult> FinishAsync(
        HttpContext context, AuditLog audit, IAntiforgery antiforgery, string action, string? id, EditOutcome? outcome, string? formError, string? secret, string formAction, IFormCollection form, CancellationToken cancellationToken,
        string? clientSecret = null)
    {
        if (outcome?.Status == EditStatus.Done)
        {
            await AdminApi.RespondAsync(context, audit, action, id, outcome, created: false, cancellationToken);
            context.Response.Headers.Remove("ETag");
            if (secret is not null || clientSecret is not null)
            {
                var shown = (secret is null ? "" : $"<p>Give this key to the instance <strong>{HtmlPage.Encode(id)}</strong>. It is not shown again.</p><pre id=\"secret\">{HtmlPage.Encode(secret)}</pre>")
                    + (clientSecret is null ? "" : $"<p>The client secret of <strong>{HtmlPage.Encode(id)}</strong> for the token endpoint (the broker keeps only its hash). It is not shown again.</p><pre id=\"client-secret\">{HtmlPage.Encode(clientSecret)}</pre>");
                context.Response.Headers.CacheControl = "no-store";
                return HtmlPage.Render("Instance saved", shown + $"<p><a href=\"{HtmlPage.Encode(context.BrowserPath("/admin"))}\">Back to the admin page</a></p>");
            }

            // 303: the browser follows with a GET, so a reload does not repeat the change.
            return new SeeOther("/admin");
        }

        string[] problems = formError is not null ? [formError]
            : outcome?.Status switch
            {
                EditStatus.PreconditionFailed => ["The allowlist changed since this page was loaded. Reload the page and repeat the change."],
                EditStatus.NotFound => [$"There is no instance '{id}'."],
                _ => outcome?.Problems.Select(problem => problem.ToString()).ToArray() ?? [],
            };
        var status = outcome?.Status == EditStatus.PreconditionFailed ? StatusCodes.Status412PreconditionFailed : StatusCodes.Status400BadRequest;
        var list = string.Concat(problems.Select(problem => $"<li>{HtmlPage.Encode(problem)}</li>"));
        var again = formAction == "/admin" ? "" : InstanceForm(context, antiforgery, formAction, outcome?.ETag ?? form["etag"].ToString(), null, form);
        return HtmlPage.Render("Not saved", $"<p>Nothing was changed:</p><ul id=\"problems\">{list}</ul>{again}<p><a href=\"{HtmlPage.Encode(context.BrowserPath("/admin"))}\">Back</a></p>", status);
    }

    private static bool IsDisabled(JsonObject entry) => entry["disabled"] is JsonValue disabled && disabled.TryGetValue<bool>(out var value) && value;

    /// <summary>Builds the entry from the form; a generated secret is returned once so the page can show it.</summary>
    private static readonly HashSet<string> FormFields = ["id", "redirectUris", "provider", "requireState", "refresh", "public", "scopes", "encryptionKey", "deliverAccessToken", "postLogoutRedirectUris", "webhookUrl"];

    private static (JsonObject? Entry, string? Secret, string? ClientSecret, string? Error) EntryFromForm(IFormCollection form, JsonObject? existing)
    {
        var entry = new JsonObject
        {
            ["id"] = form["id"].ToString().Trim(),
            ["redirectUris"] = new JsonArray([.. Lines(form["redirectUris"]).Select(uri => JsonValue.Create(uri))]),
        };

        // What the form does not show is kept as it was: the kill-switch (its own buttons set it), the client secret's
        // hash, and whatever later settings an entry has.
        foreach (var (name, value) in existing ?? [])
        {
            if (!FormFields.Contains(name))
            {
                entry[name] = value?.DeepClone();
            }
        }

        // The default (oauth-app) is left unwritten, as the CLI does.
        if (form["provider"].ToString() is { Length: > 0 } provider && provider != GitHub.GitHubProviders.OAuthApp)
        {
            entry["provider"] = provider;
        }

        if (form["requireState"] == "true")
        {
            entry["requireState"] = true;
        }

        if (form["refresh"] == "true")
        {
            entry["refresh"] = true;
        }

        if (form["public"] == "true")
        {
            entry["public"] = true;
        }

        if (form["webhookUrl"].ToString().Trim() is { Length: > 0 } webhookUrl)
        {
            entry["webhookUrl"] = webhookUrl;
        }

        if (Lines(form["postLogoutRedirectUris"]) is { Length: > 0 } postLogout)
        {
            entry["postLogoutRedirectUris"] = new JsonArray([.. postLogout.Select(uri => JsonValue.Create(uri))]);
        }

        string? clientSecret = null;
        if (form["newClientSecret"] == "true")
        {
            clientSecret = AllowlistFile.NewClientSecret();
            entry["clientSecret"] = AllowlistFile.ClientSecretEntry(clientSecret);
        }

        if (Scopes.Split(form["scopes"]) is { Length: > 0 } scopes)
        {
            entry["scopes"] = new JsonArray([.. scopes.Select(scope => JsonValue.Create(scope))]);
        }

        string? secret = null;
        switch (form["keyMode"].ToString())
        {
            case "keep" when (existing?["encryptionKey"]) is JsonObject current:
                entry["encryptionKey"] = current.DeepClone();
                break;
            case "identity":
                entry["deliverAccessToken"] = false;
                break;
            case "secret":
                var generated = new JsonObject { ["kty"] = "oct", ["k"] = Jose.Base64Url.Encode(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), ["alg"] = "A256KW" };
                entry["encryptionKey"] = generated;
                secret = generated.ToJsonString();
                break;
            case "key":
                try
                {
                    if (JsonNode.Parse(form["encryptionKey"].ToString()) is not JsonObject key)
                    {
                        return (null, null, null, "encryptionKey must be a JWK (a JSON object).");
                    }

                    entry["encryptionKey"] = key;
                }
                catch (JsonException)
                {
                    return (null, null, null, "encryptionKey is not valid JSON.");
                }

                break;
            default:
                return (null, null, null, "Choose how the instance receives the token: its public key, a generated secret, or identity only.");
        }

        return (entry, secret, clientSecret, null);
    }

    private static string InstanceForm(HttpContext context, IAntiforgery antiforgery, string action, string etag, JsonObject? entry, IFormCollection? previous = null)
    {
        var id = previous?["id"].ToString() ?? (string?)entry?["id"] ?? "";
        var uris = previous?["redirectUris"].ToString() ?? string.Join("\n", Strings(entry?["redirectUris"]));
        var scopes = previous?["scopes"].ToString() ?? string.Join(' ', Strings(entry?["scopes"]));
        var postLogoutUris = previous?["postLogoutRedirectUris"].ToString() ?? string.Join("\n", Strings(entry?["postLogoutRedirectUris"]));
        var webhookUrl = previous?["webhookUrl"].ToString() ?? (string?)entry?["webhookUrl"] ?? "";
        var hasKey = entry?["encryptionKey"] is JsonObject;
        // New entries require state; an existing entry shows what it has (entries from before the setting have none).
        var requireState = previous is not null ? previous["requireState"] == "true"
            : entry is null || (entry["requireState"] is JsonValue required && required.GetValue<bool>());
        var refresh = previous is not null ? previous["refresh"] == "true" : entry?["refresh"] is JsonValue refreshes && refreshes.TryGetValue<bool>(out var on) && on;
        var provider = previous?["provider"].ToString() ?? (string?)entry?["provider"] ?? GitHub.GitHubProviders.OAuthApp;
        var isPublic = previous is not null ? previous["public"] == "true" : entry?["public"] is JsonValue publicValue && publicValue.TryGetValue<bool>(out var publicOn) && publicOn;
        var providers = string.Concat(GitHub.GitHubProviders.All.Select(name =>
            CultureInvariant($"<option value=\"{name}\"{(name == provider ? " selected" : "")}>{(name == GitHub.GitHubProviders.OAuthApp ? "the broker's OAuth App (oauth-app)" : "the broker's GitHub App (github-app)")}</option>")));
        var fields = new StringBuilder()
            .Append(CultureInvariant($"<p><label>Id <input name=\"id\" value=\"{HtmlPage.Encode(id)}\" {(entry is null ? "" : "readonly")}></label></p>"))
            .Append(CultureInvariant($"<p><label>Redirect URIs, one per line<br><textarea name=\"redirectUris\" rows=\"3\" cols=\"60\">{HtmlPage.Encode(uris)}</textarea></label></p>"))
            .Append(CultureInvariant($"<p><label>Signs users in through <select name=\"provider\">{providers}</select></label> (a GitHub App takes no scopes: leave them empty)</p>"))
            .Append(CultureInvariant($"<p><label>Scopes (empty: the default) <input name=\"scopes\" size=\"40\" value=\"{HtmlPage.Encode(scopes)}\"></label></p>"))
            .Append(CultureInvariant($"<p><label><input type=\"checkbox\" name=\"requireState\" value=\"true\"{(requireState ? " checked" : "")}> Require the instance's own <code>state</code> on every login</label></p>"))
            .Append(CultureInvariant($"<p><label>Webhook URL for the GitHub App's events (github-app only; empty: none) <input name=\"webhookUrl\" size=\"50\" value=\"{HtmlPage.Encode(webhookUrl)}\"></label></p>"))
            .Append(CultureInvariant($"<p><label>OpenID Connect post-logout redirect URIs, one per line (compared exactly)<br><textarea name=\"postLogoutRedirectUris\" rows=\"2\" cols=\"60\">{HtmlPage.Encode(postLogoutUris)}</textarea></label></p>"))
            .Append(CultureInvariant($"<p><label><input type=\"checkbox\" name=\"refresh\" value=\"true\"{(refresh ? " checked" : "")}> Deliver GitHub's refresh token and let the instance refresh through <code>/oauth/token</code> (needs a client secret)</label><br>"))
            .Append(CultureInvariant($"<label><input type=\"checkbox\" name=\"public\" value=\"true\"{(isPublic ? " checked" : "")}> A public OpenID Connect client (no secret, PKCE required)</label><br>"))
            .Append(CultureInvariant($"<label><input type=\"checkbox\" name=\"newClientSecret\" value=\"true\"> Generate a new client secret (shown once{(entry?["clientSecret"] is null ? "" : "; replaces the current one")})</label></p>"))
            .Append("<p>The GitHub token is delivered:<br>");
        if (hasKey)
        {
            fields.Append(CultureInvariant($"<label><input type=\"radio\" name=\"keyMode\" value=\"keep\" checked> encrypted to the current key ({HtmlPage.Encode(KeySummary(entry!))})</label><br>"));
        }

        fields.Append(CultureInvariant($"<label><input type=\"radio\" name=\"keyMode\" value=\"key\"{(hasKey ? "" : " checked")}> encrypted to this public key (JWK):</label><br><textarea name=\"encryptionKey\" rows=\"4\" cols=\"60\"></textarea><br>"))
            .Append("<label><input type=\"radio\" name=\"keyMode\" value=\"secret\"> encrypted to a new 256-bit shared secret (shown once)</label><br>")
            .Append(CultureInvariant($"<label><input type=\"radio\" name=\"keyMode\" value=\"identity\"{(entry?["deliverAccessToken"] is JsonValue deliver && !deliver.GetValue<bool>() ? " checked" : "")}> not at all (login only)</label></p>"))
            .Append("<button>Save</button>");
        return Form(context, antiforgery, action, etag, fields.ToString());
    }

    private static string Form(HttpContext context, IAntiforgery antiforgery, string action, string etag, string innerHtml)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        return CultureInvariant($"<form method=\"post\" action=\"{HtmlPage.Encode(context.BrowserPath(action))}\"><input type=\"hidden\" name=\"{tokens.FormFieldName}\" value=\"{HtmlPage.Encode(tokens.RequestToken)}\"><input type=\"hidden\" name=\"etag\" value=\"{HtmlPage.Encode(etag)}\">{innerHtml}</form>");
    }

    private static string CheckResultHtml(AllowlistSnapshot snapshot, string uri)
    {
        var check = snapshot.Check(uri);
        if (check.Target is { } target)
        {
            return CultureInvariant($"<p id=\"check-result\">Accepted for <strong>{HtmlPage.Encode(target.Instance.Id)}</strong> by {HtmlPage.Encode(target.Entry.ToString())} ({HtmlPage.Encode(target.Rule)}).</p>");
        }

        var near = string.Concat(check.EntriesOnHost.Select(entry => $"<br>Registered on this host: {HtmlPage.Encode(entry.Entry.ToString())} ({HtmlPage.Encode(entry.Instance.Id)})"));
        return CultureInvariant($"<p id=\"check-result\">Refused: {HtmlPage.Encode(check.Reason)}.{near}</p>");
    }

    private static string KeySummary(JsonObject entry) =>
        entry["encryptionKey"] is JsonObject key ? $"{(string?)key["kty"]} {(string?)key["alg"] ?? "(default algorithm)"}" : "login only, no token";

    private static IEnumerable<string> Strings(JsonNode? array) =>
        array is JsonArray items ? items.Select(item => item?.ToString() ?? "") : [];

    private static string[] Lines(string? text) =>
        (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string CultureInvariant(FormattableString text) => FormattableString.Invariant(text);

    private sealed class SeeOther(string location) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = StatusCodes.Status303SeeOther;
            httpContext.Response.Headers.Location = httpContext.BrowserPath(location);
            return Task.CompletedTask;
        }
    }
}
