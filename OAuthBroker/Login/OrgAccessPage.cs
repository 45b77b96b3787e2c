using Microsoft.AspNetCore.Http.HttpResults;
using OAuthBroker.Allowlist;
using OAuthBroker.GitHub;
using OAuthBroker.Web;

namespace OAuthBroker.Login;

/// <summary>
/// <c>GET /auth/github/org-access?redirect_uri=…</c>: where an instance sends a user whose organisation blocks the
/// broker's app (GitHub answered 403 "…has enabled OAuth App access restrictions…", or the GitHub App is not installed
/// there). It links to GitHub's page for asking (or, for an owner, granting) access for this very app, then back to the
/// instance. The redirect URI is checked like a login's: the page never links anywhere the allowlist does not name.
/// </summary>
public static class OrgAccessPage
{
    public const string Path = "/auth/github/org-access";

    public static async Task<IResult> ShowAsync(HttpContext context, AllowlistProvider allowlist, GitHubIntegrations gitHub, Audit.AuditLog audit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var query = context.Request.Query;
        RedirectTarget? target = null;
        string? reason = null;
        if (query["redirect_uri"].Count != 1 || !allowlist.Current.TryMatch(query["redirect_uri"].ToString(), out target, out reason))
        {
            var refusal = reason is null ? "redirect_uri is required once." : reason + ".";
            await audit.RecordRefusalAsync(null, "org-access: " + refusal, context.Connection.RemoteIpAddress, cancellationToken);
            return Refusal.For(context.Request, "Unknown application", refusal);
        }

        var instance = target.Instance;
        var back = target.Uri.ToString();
        var (what, where, link) = instance.Provider == GitHubProviders.GitHubApp && gitHub.GitHubApp is { } app
            ? ("the broker's GitHub App is not installed on that organisation, or not for the repositories it needs",
               "request (or, as an owner, make) its installation on the organisation", app.InstallationPage ?? app.ConnectionSettingsPage)
            : ("the organisation has enabled OAuth App access restrictions, and it has not approved the broker's app",
               "request access for the organisation (an owner grants it there too)", gitHub.OAuthApp.ConnectionSettingsPage);
        return Page(
            $"<p id=\"why\">GitHub refused this application access to an organisation's data because {HtmlPage.Encode(what)}. On GitHub you can {HtmlPage.Encode(where)}; once it is approved, sign in again.</p>"
            + $"<p><a class=\"button\" id=\"github\" href=\"{HtmlPage.Encode(link)}\" rel=\"noopener noreferrer\">Open the app's page on GitHub</a></p>"
            + $"<p><a id=\"continue\" href=\"{HtmlPage.Encode(back)}\">Continue to {HtmlPage.Encode(instance.Id)}</a></p>");
    }

    private static ContentHttpResult Page(string body) => HtmlPage.Render("Organisation access on GitHub", body);
}
