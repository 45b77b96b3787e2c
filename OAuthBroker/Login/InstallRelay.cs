using System.Globalization;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Tokens;
using OAuthBroker.Users;
using OAuthBroker.Webhooks;

namespace OAuthBroker.Login;

/// <summary>
/// The install relay (<c>GET /auth/github/install</c>): an instance sends the user to install the broker's GitHub App,
/// through a one-time browser-bound pending login as for a sign-in. GitHub comes back to the callback with
/// <c>installation_id</c> and <c>setup_action</c> (<c>install</c>, <c>update</c>, or <c>request</c> when an
/// organisation owner must approve), and with a <c>code</c> when the app requests user authorization during
/// installation. GitHub warns that <c>installation_id</c> can be spoofed: the broker believes it only when the user's
/// own token reaches that installation (<c>GET /user/installations</c>), and without a code it first signs the user in
/// through the app to get one.
/// </summary>
public static class InstallRelay
{
    /// <summary>The pending login's mark for a relay that went to GitHub's installation page.</summary>
    public const string Mark = "install";
    private const string AfterInstallPrefix = "install:";
    private static readonly string[] SetupActions = ["install", "update", "request"];

    public static bool Handles(PendingLogin login)
    {
        ArgumentNullException.ThrowIfNull(login);
        return login.Request is { } request && (request == Mark || request.StartsWith(AfterInstallPrefix, StringComparison.Ordinal));
    }

    public static async Task<IResult> CompleteAsync(
        HttpContext context, PendingLogin login, AllowlistInstance instance, GitHubIntegrationOptions integration, PendingLoginStore logins, GitHubClient gitHub, IUserStore users,
        BrokerTokenIssuer issuer, BrokerOptions broker, ILogger logger, Func<string, string?, string, string?, Task> record, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(login);
        ArgumentNullException.ThrowIfNull(record);
        var query = context.Request.Query;
        var fromInstallationPage = login.Request == Mark;
        // After the follow-up sign-in, the installation is the one recorded with the pending login, not the query's.
        var (installationId, setupAction) = fromInstallationPage ? ReadQuery(query) : ReadMark(login.Request!);
        if (setupAction is null)
        {
            await record(instance.Id, null, LoginOutcomes.GitHubError, "GitHub's answer to the installation has no valid setup_action or installation_id");
            return LoginEndpoints.ToInstance(login, broker, LoginEndpoints.Error("server_error", "GitHub's answer to the installation could not be read."));
        }

        var code = query["code"].ToString();
        if (code.Length == 0)
        {
            if (setupAction == "request")
            {
                await record(instance.Id, null, "installation_pending", "an organization owner must approve the installation");
                return LoginEndpoints.ToInstance(login, broker, LoginEndpoints.Error("installation_pending", "An organization owner must approve the installation; GitHub has asked them."));
            }

            if (!fromInstallationPage || installationId is not { } pending)
            {
                await record(instance.Id, null, LoginOutcomes.GitHubError, "GitHub returned no authorization code after the installation");
                return LoginEndpoints.ToInstance(login, broker, LoginEndpoints.Error("server_error", "GitHub returned no authorization code."));
            }

            // The app does not request user authorization during installation: sign the user in through it, then check.
            return await LoginEndpoints.BeginAuthorizationAsync(context, logins, integration, broker, login.InstanceId, login.RedirectUri, login.InstanceState, login.Scope, login.ResponseMode,
                cancellationToken, request: string.Create(CultureInfo.InvariantCulture, $"{AfterInstallPrefix}{pending}:{setupAction}"));
        }

        // A code GitHub issued on its installation page had no PKCE challenge (the broker sends none there).
        var (token, gitHubUser, failed) = await LoginEndpoints.ExchangeAndIdentifyAsync(
            gitHub, integration, code, fromInstallationPage ? null : login.CodeVerifier, login, instance, broker, logger, record, cancellationToken);
        if (failed is not null)
        {
            return failed;
        }

        var claims = new Dictionary<string, object> { ["setup_action"] = setupAction };
        string? account = null;
        if (installationId is { } id)
        {
            var found = await gitHub.FindInstallationAsync(integration, token!, id, cancellationToken);
            if (found.Failure is { } listFailure)
            {
                await record(instance.Id, gitHubUser!.Login, LoginOutcomes.GitHubError, listFailure.Reason);
                return LoginEndpoints.GitHubFailed(logger, login, broker, instance, listFailure);
            }

            if (found.Value is null)
            {
                await record(instance.Id, gitHubUser!.Login, LoginOutcomes.Refused, $"installation {id} is not one this user's token reaches (a spoofed installation_id?)");
                return LoginEndpoints.ToInstance(login, broker, LoginEndpoints.Error("installation_unverified", "GitHub does not show this installation to the signed-in user."));
            }

            account = found.Value.AccountLogin;
            claims["installation_id"] = id;
        }
        else
        {
            claims["installation_status"] = "pending_approval";
        }

        var user = await users.RecordLoginAsync(gitHubUser!, new LoginGrant(instance.Id, integration.Provider, token!.Scope), cancellationToken);
        if (installationId is { } owned)
        {
            // Its webhook events now belong to this instance.
            await context.RequestServices.GetRequiredService<IWebhookStore>().RecordInstallationAsync(owned, instance.Id, user.Id, account,
                context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
        }

        var jwt = issuer.Issue(instance, user, token!, login.ResponseMode, claims);
        await context.RequestServices.GetRequiredService<Lifecycle.RefreshRelay>().RecordIssuedAsync(instance, user, token!, cancellationToken);
        LoginEndpoints.Log.Completed(logger, instance.Id, user.Login, user.Id);
        await record(instance.Id, user.Login, LoginOutcomes.Succeeded, installationId is null ? "installation requested, pending approval" : $"installation {installationId} ({setupAction})");
        return LoginEndpoints.ToInstance(login, broker, [new("token", jwt), new("user", user.Login)]);
    }

    private static (long? InstallationId, string? SetupAction) ReadQuery(IQueryCollection query)
    {
        if (query["setup_action"].Count != 1 || query["installation_id"].Count > 1 || !SetupActions.Contains(query["setup_action"].ToString(), StringComparer.Ordinal))
        {
            return (null, null);
        }

        var action = query["setup_action"].ToString();
        if (query["installation_id"].Count == 0)
        {
            // Only a request awaiting an owner's approval has no installation yet.
            return action == "request" ? (null, action) : (null, null);
        }

        return long.TryParse(query["installation_id"], NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0 ? (id, action) : (null, null);
    }

    private static (long? InstallationId, string? SetupAction) ReadMark(string mark)
    {
        var parts = mark[AfterInstallPrefix.Length..].Split(':');
        return parts.Length == 2 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? (id, parts[1]) : (null, null);
    }
}
