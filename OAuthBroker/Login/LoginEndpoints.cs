using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using OAuthBroker.Admin;
using OAuthBroker.Allowlist;
using OAuthBroker.Audit;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;
using OAuthBroker.Users;
using OAuthBroker.Telemetry;
using OAuthBroker.Web;

namespace OAuthBroker.Login;

/// <summary>The outcomes a login attempt is recorded with in the audit trail.</summary>
public static class LoginOutcomes
{
    public const string Succeeded = "succeeded";
    public const string Denied = "denied";
    public const string GitHubError = "github_error";
    public const string Refused = "refused";
}

public static partial class LoginEndpoints
{
    public const int MaxInstanceStateLength = 512;

    /// <summary>What a user of a disabled instance is told, at the start and at GitHub's answer.</summary>
    public const string DisabledReason = "This application has been disabled by the broker's administrator; sign-in through the broker is not available for it.";
    private const int MaxCodeLength = 256;

    public static IServiceCollection AddLogin(this IServiceCollection services)
    {
        services.AddStore<IPendingLoginRepository, SqlitePendingLoginRepository, PostgresPendingLoginRepository>();
        services.AddSingleton<PendingLoginStore>();
        services.AddSingleton<PendingLoginCeiling>();
        services.AddSingleton<IPurgeable>(provider => provider.GetRequiredService<PendingLoginStore>());
        return services;
    }

    public static IEndpointRouteBuilder MapLogin(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/auth/github").WithTags("Login");
        group.MapGet("", StartAsync);
        group.MapGet("/callback", CallbackAsync);
        group.MapGet("/org-access", OrgAccessPage.ShowAsync);
        group.MapGet("/install", (HttpContext context, AllowlistProvider allowlist, PendingLoginStore logins, GitHubIntegrations gitHub, IOptions<BrokerOptions> broker, AuditLog audit,
            ILogger<PendingLoginStore> logger, CancellationToken cancellationToken) => StartAsync(context, allowlist, logins, gitHub, broker, audit, logger, cancellationToken, install: true));
        return endpoints;
    }

    /// <summary>GET /auth/github: checks the instance's redirect_uri first, then sends the browser to GitHub.</summary>
    public static async Task<IResult> StartAsync(
        HttpContext context,
        AllowlistProvider allowlist,
        PendingLoginStore logins,
        GitHubIntegrations gitHub,
        IOptions<BrokerOptions> broker,
        AuditLog audit,
        ILogger<PendingLoginStore> logger,
        CancellationToken cancellationToken,
        bool install = false)
    {
        var query = context.Request.Query;
        var refuse = (string? instanceId, string reason) => RefuseAsync(context, audit, logger, instanceId, reason, cancellationToken);
        // A parameter given twice is read differently by different parsers: refuse rather than pick one.
        if (query["redirect_uri"].Count > 1 || query["state"].Count > 1 || query["scope"].Count > 1 || query["response_mode"].Count > 1)
        {
            return await refuse(null, "A parameter is given more than once.");
        }

        if (!allowlist.Current.TryMatch(query["redirect_uri"].ToString(), out var target, out var reason))
        {
            return await refuse(null, reason + ".");
        }

        if (target.Instance.Disabled)
        {
            return await RefuseDisabledAsync(context, audit, logger, target.Instance.Id, cancellationToken);
        }

        var instanceState = query["state"].Count == 0 ? null : query["state"].ToString();
        if (target.Instance.RequiresState && string.IsNullOrEmpty(instanceState))
        {
            return await refuse(target.Instance.Id, "state is required by this instance's allowlist entry: send the random value your callback checks.");
        }

        if (!IsAcceptableState(instanceState))
        {
            return await refuse(target.Instance.Id, $"state must be at most {MaxInstanceStateLength} characters without control characters.");
        }

        var responseMode = query["response_mode"].Count == 0 ? InstanceResponse.Query : query["response_mode"].ToString();
        if (!InstanceResponse.Modes.Contains(responseMode, StringComparer.Ordinal))
        {
            return await refuse(target.Instance.Id, "response_mode must be query, fragment or form_post.");
        }

        var instance = target.Instance;
        if (gitHub.For(instance) is not { } integration)
        {
            return await RefuseAsync(context, audit, logger, instance.Id, GitHubIntegrations.MissingGitHubApp, cancellationToken, StatusCodes.Status503ServiceUnavailable);
        }

        // GET /auth/github/install: the same checks, then GitHub's installation page instead of its authorize page.
        if (install)
        {
            return gitHub.GitHubApp is { InstallationPage: { } installationPage } && instance.Provider == GitHubProviders.GitHubApp
                ? await BeginAuthorizationAsync(context, logins, integration, broker.Value, instance.Id, target.Uri.ToString(), instanceState, "", responseMode, cancellationToken,
                    request: InstallRelay.Mark, installationPage: installationPage)
                : await refuse(instance.Id, "The install relay is for entries with \"provider\": \"github-app\", on a broker whose GitHubApp section names the app's Slug.");
        }

        var requestedScope = query["scope"].Count == 0 ? null : query["scope"].ToString();
        if (!Scopes.TryResolve(requestedScope, gitHub.OAuthApp.DefaultScopes, instance.AllowedScopes, out var scope, out var scopeError))
        {
            return await refuse(instance.Id, scopeError + ".");
        }

        Log.Started(logger, instance.Id, scope);
        return await BeginAuthorizationAsync(context, logins, integration, broker.Value, instance.Id, target.Uri.ToString(), instanceState, scope, responseMode, cancellationToken);
    }

    /// <summary>
    /// Records a pending login bound to this browser and sends the browser to GitHub's authorize page; beyond the
    /// ceiling on pending logins, answers 503 with Retry-After and writes nothing.
    /// </summary>
    public static async Task<IResult> BeginAuthorizationAsync(
        HttpContext context, PendingLoginStore logins, GitHubIntegrationOptions gitHub, BrokerOptions broker,
        string instanceId, string redirectUri, string? instanceState, string scope, string responseMode, CancellationToken cancellationToken, string? request = null, string? installationPage = null)
    {
        if (!context.RequestServices.GetRequiredService<PendingLoginCeiling>().TryAdmit(out var retryAfter))
        {
            context.RequestServices.GetRequiredService<BrokerMetrics>().RateLimited("pending_logins");
            RateLimits.SetRetryAfter(context.Response, retryAfter);
            return Refusal.For(context.Request, "Too many sign-ins", "The broker is handling as many sign-ins as it takes at once; try again shortly.", StatusCodes.Status503ServiceUnavailable);
        }

        var started = await logins.CreateAsync(instanceId, redirectUri, instanceState, scope, responseMode, request, cancellationToken);
        context.RequestServices.GetRequiredService<BrokerMetrics>().LoginStarted(instanceId);
        BrowserBinding.Set(context.Response, started.State, started.BrowserSecret, BrowserBinding.IsSecure(context, broker), broker);
        // GitHub passes state through its installation page and back to the app's callback (or setup) URL.
        if (installationPage is not null)
        {
            return TypedResults.Redirect(QueryHelpers.AddQueryString(installationPage, "state", started.State));
        }

        var authorize = QueryHelpers.AddQueryString(gitHub.AuthorizeEndpoint, new Dictionary<string, string?>
        {
            ["client_id"] = gitHub.ClientId,
            ["redirect_uri"] = broker.CallbackUrl,
            ["scope"] = gitHub.UsesScopes ? scope : null,
            ["state"] = started.State,
            ["code_challenge"] = started.CodeChallenge,
            ["code_challenge_method"] = "S256",
        });
        return TypedResults.Redirect(authorize);
    }

    /// <summary>
    /// GET /auth/github/callback: state and browser binding are checked, and the state consumed, before anything is
    /// sent to GitHub; the instance is checked again against the allowlist as it is now.
    /// </summary>
    public static async Task<IResult> CallbackAsync(
        HttpContext context,
        AllowlistProvider allowlist,
        PendingLoginStore logins,
        GitHubClient gitHub,
        GitHubIntegrations integrations,
        IUserStore users,
        BrokerTokenIssuer issuer,
        IOptions<BrokerOptions> broker,
        AuditLog audit,
        ILogger<PendingLoginStore> logger,
        CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        var state = query["state"].ToString();
        var refuse = (string? instanceId, string reason) => RefuseAsync(context, audit, logger, instanceId, reason, cancellationToken);
        var metrics = context.RequestServices.GetRequiredService<BrokerMetrics>();
        var record = (string instanceId, string? gitHubLogin, string outcome, string? reason) =>
        {
            metrics.LoginFinished(instanceId, outcome);
            return audit.RecordLoginAsync(instanceId, gitHubLogin, outcome, reason, ClientAddress.Of(context), cancellationToken);
        };
        if (query["state"].Count != 1 || query["code"].Count > 1 || query["error"].Count > 1)
        {
            return await refuse(null, "The sign-in response from GitHub is missing its state or repeats a parameter.");
        }

        var secure = BrowserBinding.IsSecure(context, broker.Value);
        var (login, refusal, expiredRedirectUri) = await logins.TryConsumeAsync(state, BrowserBinding.Read(context.Request, state, secure, broker.Value), cancellationToken);
        if (refusal == LoginRefusal.Expired && expiredRedirectUri is not null && allowlist.Current.TryMatch(expiredRedirectUri, out var stillAllowed, out _))
        {
            await refuse(stillAllowed.Instance.Id, "This sign-in took longer than 10 minutes and has expired.");
            return StartAgainPage(stillAllowed.Uri);
        }

        if (login is null)
        {
            return await refuse(null, refusal switch
            {
                LoginRefusal.Expired => "This sign-in took longer than 10 minutes and has expired.",
                LoginRefusal.AlreadyUsed => "This sign-in has already been completed; a sign-in link works once.",
                LoginRefusal.OtherBrowser => "This sign-in was started in another browser (or its cookie is missing).",
                _ => "This sign-in is not known to the broker.",
            });
        }

        BrowserBinding.Clear(context.Response, state, secure, broker.Value);
        if (login.InstanceId == AdminSignIn.PseudoInstanceId)
        {
            return await AdminSignIn.CompleteAsync(context, login, code: query["code"].ToString(), gitHub, integrations.OAuthApp, broker.Value, audit, cancellationToken);
        }

        if (Account.AccountPage.Handles(login.InstanceId))
        {
            return await Account.AccountPage.CompleteAsync(context, login, code: query["code"].ToString(), gitHub, broker.Value, audit, cancellationToken);
        }

        if (!allowlist.Current.TryMatch(login.RedirectUri, out var target, out _) || target.Instance.Id != login.InstanceId)
        {
            return await refuse(login.InstanceId, "The application that started this sign-in is no longer allowed by the broker.");
        }

        // Disabled between the start and GitHub's answer: the code is never exchanged, so no token exists.
        if (target.Instance.Disabled)
        {
            return await RefuseDisabledAsync(context, audit, logger, login.InstanceId, cancellationToken);
        }

        var instance = target.Instance;
        // The GitHub App section removed between the start and GitHub's answer: nothing to exchange the code with.
        if (integrations.For(instance) is not { } integration)
        {
            return await RefuseAsync(context, audit, logger, instance.Id, GitHubIntegrations.MissingGitHubApp, cancellationToken, StatusCodes.Status503ServiceUnavailable);
        }

        if (query["error"].Count == 1)
        {
            var denied = query["error"].ToString() == "access_denied";
            Log.GitHubDeclined(logger, instance.Id, denied ? "access_denied" : "an error");
            await record(instance.Id, null, denied ? LoginOutcomes.Denied : LoginOutcomes.GitHubError, denied ? "the user declined on GitHub" : "GitHub returned an error to the callback");
            return ToInstance(login, broker.Value, denied
                ? Error("access_denied", "The user did not authorize the application on GitHub.")
                : Error("server_error", "GitHub could not complete the authorization."));
        }

        if (InstallRelay.Handles(login))
        {
            return await InstallRelay.CompleteAsync(context, login, instance, integration, logins, gitHub, users, issuer, broker.Value, logger, record, cancellationToken);
        }

        var code = query["code"].ToString();
        if (code.Length is 0 or > MaxCodeLength)
        {
            await record(instance.Id, null, LoginOutcomes.GitHubError, "GitHub returned no usable authorization code");
            return ToInstance(login, broker.Value, Error("server_error", "GitHub returned no usable authorization code."));
        }

        var (token, gitHubUser, failed) = await ExchangeAndIdentifyAsync(gitHub, integration, code, login.CodeVerifier, login, instance, broker.Value, logger, record, cancellationToken);
        if (failed is not null)
        {
            return failed;
        }

        // GitHub issued a token for this login whether or not the instance receives it: it counts towards the ten.
        var user = await users.RecordLoginAsync(gitHubUser!, new LoginGrant(instance.Id, integration.Provider, token!.Scope), cancellationToken);
        // An OpenID Connect client gets a one-time code, redeemed at the token endpoint.
        if (login.Request is not null)
        {
            var authorizationCode = await context.RequestServices.GetRequiredService<Oidc.OidcFlow>().IssueCodeAsync(instance, user, token, login, cancellationToken);
            // As for the broker JWT: an instance with a client credential may revoke the GitHub token it receives.
            await context.RequestServices.GetRequiredService<Lifecycle.RefreshRelay>().RecordIssuedAsync(instance, user, token, cancellationToken);
            Log.Completed(logger, instance.Id, user.Login, user.Id);
            await record(instance.Id, user.Login, LoginOutcomes.Succeeded, null);
            return ToInstance(login, broker.Value, [new("code", authorizationCode)]);
        }

        var jwt = issuer.Issue(instance, user, token, login.ResponseMode);
        await context.RequestServices.GetRequiredService<Lifecycle.RefreshRelay>().RecordIssuedAsync(instance, user, token, cancellationToken);
        Log.Completed(logger, instance.Id, user.Login, user.Id);
        await record(instance.Id, user.Login, LoginOutcomes.Succeeded, null);
        return ToInstance(login, broker.Value, [new("token", jwt), new("user", user.Login)]);
    }

    /// <summary>
    /// The code exchanged for GitHub's token and the token's user read; a failure of either is recorded and answered to
    /// the instance, and returned as the result to send.
    /// </summary>
    internal static async Task<(GitHubToken? Token, GitHubUser? User, IResult? Failed)> ExchangeAndIdentifyAsync(
        GitHubClient gitHub, GitHubIntegrationOptions integration, string code, string? codeVerifier, PendingLogin login, AllowlistInstance instance, BrokerOptions broker, ILogger logger,
        Func<string, string?, string, string?, Task> record, CancellationToken cancellationToken)
    {
        var token = await gitHub.ExchangeCodeAsync(integration, code, codeVerifier, broker.CallbackUrl, cancellationToken);
        if (token.Failure is { } exchangeFailure)
        {
            await record(instance.Id, null, LoginOutcomes.GitHubError, exchangeFailure.Reason);
            return (null, null, GitHubFailed(logger, login, broker, instance, exchangeFailure));
        }

        var gitHubUser = await gitHub.GetUserAsync(integration, token.Value!, cancellationToken);
        if (gitHubUser.Failure is { } userFailure)
        {
            await record(instance.Id, null, LoginOutcomes.GitHubError, userFailure.Reason);
            return (null, null, GitHubFailed(logger, login, broker, instance, userFailure));
        }

        return (token.Value, gitHubUser.Value, null);
    }

    /// <summary>GitHub sent the user back after the login expired: offer the way back to the instance to start again.</summary>
    private static ContentHttpResult StartAgainPage(RedirectUri instance)
    {
        var home = (instance with { Path = "/" }).ToString();
        return HtmlPage.Render("Sign-in expired",
            $"<p>This sign-in took longer than 10 minutes and has expired, so it was not completed.</p><p><a class=\"button\" id=\"start-again\" href=\"{HtmlPage.Encode(home)}\">Go back to {HtmlPage.Encode(home)} and sign in again</a></p>",
            StatusCodes.Status400BadRequest);
    }

    internal static IResult GitHubFailed(ILogger logger, PendingLogin login, BrokerOptions broker, AllowlistInstance instance, GitHubFailure failure)
    {
        Log.GitHubFailed(logger, instance.Id, failure.Kind, failure.Reason);
        return ToInstance(login, broker, Error(failure.OAuthError, failure.Kind == GitHubFailureKind.Unavailable
            ? "GitHub is not reachable right now; try again in a moment."
            : "GitHub did not complete the sign-in."));
    }

    internal static KeyValuePair<string, string?>[] Error(string code, string description) =>
        [new("error", code), new("error_description", description)];

    /// <summary>
    /// The redirect back to the instance; its own state always comes back verbatim, and <c>iss</c> names the broker
    /// (RFC 9207), so an instance that signs in through more than one provider can tell which one answered.
    /// </summary>
    internal static IResult ToInstance(PendingLogin login, BrokerOptions broker, KeyValuePair<string, string?>[] parameters) =>
        InstanceResponse.To(login.RedirectUri, login.ResponseMode, [.. parameters, new("state", login.InstanceState), new("iss", broker.Issuer)]);

    private static async Task<IResult> RefuseAsync(
        HttpContext context, AuditLog audit, ILogger logger, string? instanceId, string reason, CancellationToken cancellationToken, int statusCode = StatusCodes.Status400BadRequest)
    {
        Log.Refused(logger, context.Request.Path, reason);
        context.RequestServices.GetRequiredService<BrokerMetrics>().LoginFinished(instanceId, LoginOutcomes.Refused);
        await audit.RecordRefusalAsync(instanceId, reason, context.Connection.RemoteIpAddress, cancellationToken);
        return Refusal.For(context.Request, "Sign-in refused", reason, statusCode);
    }

    private static Task<IResult> RefuseDisabledAsync(HttpContext context, AuditLog audit, ILogger logger, string instanceId, CancellationToken cancellationToken) =>
        RefuseAsync(context, audit, logger, instanceId, DisabledReason, cancellationToken, StatusCodes.Status403Forbidden);

    /// <summary>An instance's or client's own state, passed back verbatim: absent, or at most <see cref="MaxInstanceStateLength"/> characters without control characters.</summary>
    public static bool IsAcceptableState(string? state) => state is null || (state.Length <= MaxInstanceStateLength && !state.Any(char.IsControl));

    internal static partial class Log
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Login started for instance {InstanceId} with scope '{Scope}'")]
        public static partial void Started(ILogger logger, string instanceId, string scope);

        [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Login completed for instance {InstanceId}: GitHub user {GitHubLogin} (broker user {UserId})")]
        public static partial void Completed(ILogger logger, string instanceId, string gitHubLogin, long userId);

        [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Refused {Path}: {Reason}")]
        public static partial void Refused(ILogger logger, PathString path, string reason);

        [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "GitHub returned {Outcome} to a login for instance {InstanceId}")]
        public static partial void GitHubDeclined(ILogger logger, string instanceId, string outcome);

        [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Login for instance {InstanceId} failed at GitHub ({Kind}): {Reason}")]
        public static partial void GitHubFailed(ILogger logger, string instanceId, GitHubFailureKind kind, string reason);
    }
}
