using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using OAuthBroker.Audit;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Login;
using OAuthBroker.Web;

namespace OAuthBroker.Admin;

/// <summary>
/// Admins sign in through the broker's own GitHub login: the same one-time, browser-bound, PKCE-protected flow as
/// instances, under a pseudo-instance id no allowlist entry can have (ids start with a letter or digit). The GitHub
/// token is used for GET /user only and then dropped.
/// </summary>
public static partial class AdminSignIn
{
    public const string PseudoInstanceId = "__admin__";

    public static async Task<IResult> StartAsync(
        HttpContext context, PendingLoginStore logins, IOptions<GitHubOptions> gitHub, IOptions<BrokerOptions> broker, IOptions<AdminOptions> admin, CancellationToken cancellationToken)
    {
        if (!admin.Value.SignInEnabled)
        {
            return HtmlPage.Error("Admin sign-in", "Signing in with GitHub is not enabled (Admin:GitHubIds and Admin:GitHubLogins are empty); use the API token.", StatusCodes.Status404NotFound);
        }

        return await LoginEndpoints.BeginAuthorizationAsync(context, logins, gitHub.Value, broker.Value, PseudoInstanceId, "/admin", null, "read:user", InstanceResponse.Query, cancellationToken);
    }

    public static async Task<IResult> CompleteAsync(
        HttpContext context, PendingLogin login, string code, GitHubClient gitHub, GitHubOptions oauthApp, BrokerOptions broker, AuditLog audit, CancellationToken cancellationToken)
    {
        var admin = context.RequestServices.GetRequiredService<IOptions<AdminOptions>>().Value;
        var logger = context.RequestServices.GetRequiredService<ILogger<AdminOptions>>();
        var token = code.Length > 0 ? await gitHub.ExchangeCodeAsync(oauthApp, code, login.CodeVerifier, broker.CallbackUrl, cancellationToken) : default;
        if (token.Value is null)
        {
            return HtmlPage.Error("Admin sign-in failed", "GitHub did not complete the sign-in.", StatusCodes.Status502BadGateway);
        }

        var user = await gitHub.GetUserAsync(oauthApp, token.Value, cancellationToken);
        if (user.Value is not { } gitHubUser)
        {
            return HtmlPage.Error("Admin sign-in failed", "GitHub did not say who signed in.", StatusCodes.Status502BadGateway);
        }

        var clientIp = ClientAddress.Of(context);
        var identity = new AdminIdentity(gitHubUser.Id, gitHubUser.Login);
        var sessions = context.RequestServices.GetRequiredService<AdminSessionStore>();
        if (!admin.Names(identity, out var byLogin) || (byLogin && !await sessions.MatchesPinAsync(identity.Login, identity.GitHubId, cancellationToken)))
        {
            Log.Refused(logger, gitHubUser.Login, gitHubUser.Id);
            await audit.RecordAdminAsync(gitHubUser.Login, "sign_in_refused", null, null, null, clientIp, cancellationToken);
            return HtmlPage.Error("Not an administrator", $"The GitHub account {gitHubUser.Login} (id {gitHubUser.Id}) is not in Admin:GitHubIds, nor a login of Admin:GitHubLogins first seen with this id.", StatusCodes.Status403Forbidden);
        }

        var sessionId = await sessions.CreateAsync(identity, admin.SessionLifetime, cancellationToken);
        await context.SignInAsync(AdminAuthentication.SessionScheme, AdminAuthentication.SessionPrincipal(identity, sessionId));
        await audit.RecordAdminAsync(gitHubUser.Login, "sign_in", null, null, null, clientIp, cancellationToken);
        Log.SignedIn(logger, gitHubUser.Login);
        // A page of our own, not a redirect: the SameSite=Strict cookie is then sent on the next (same-site) navigation.
        return HtmlPage.Render("Signed in", $"<p>Signed in as {HtmlPage.Encode(gitHubUser.Login)}.</p><p><a id=\"continue\" href=\"{HtmlPage.Encode(broker.BrowserPath("/admin"))}\">Continue to the admin page</a></p>");
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 7001, Level = LogLevel.Information, Message = "Admin {GitHubLogin} signed in")]
        public static partial void SignedIn(ILogger logger, string gitHubLogin);

        [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "GitHub user {GitHubLogin} (id {GitHubId}) tried to sign in to /admin and is not an admin")]
        public static partial void Refused(ILogger logger, string gitHubLogin, long gitHubId);
    }
}
