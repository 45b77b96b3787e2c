using System.Text.Json;
using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.Audit;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Login;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;
using OAuthBroker.Users;
using OAuthBroker.Web;

namespace OAuthBroker.Oidc;

/// <summary>
/// The broker as an OpenID Connect provider, beside its own redirect: <c>/oauth/authorize</c> (authorization-code
/// flow), the token endpoint's <c>authorization_code</c> grant (<see cref="OidcFlow"/>), <c>/oauth/userinfo</c> and
/// discovery. The GitHub login in between is the one every instance gets: one-time, browser-bound state and PKCE.
/// </summary>
public static partial class OidcEndpoints
{
    public const string OpenId = "openid";
    public const string Profile = "profile";
    public const string Email = "email";

    /// <summary>A GitHub scope asked for through OpenID Connect: <c>github:repo</c> asks GitHub for <c>repo</c>.</summary>
    public const string GitHubScopePrefix = "github:";

    public const int MaxNonceLength = 256;
    public const int MaxScopeLength = 1024;

    public static readonly string[] OidcScopes = [OpenId, Profile, Email];

    public static readonly string[] Prompts = ["none", "login", "consent", "select_account"];

    public static readonly string[] Claims = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "preferred_username", "picture", "github_id", "email", "email_verified"];

    private static readonly string[] SingleParameters = ["client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "response_mode", "prompt"];

    public static IServiceCollection AddOidc(this IServiceCollection services)
    {
        services.AddStore<IAuthorizationCodeRepository, SqliteAuthorizationCodeRepository, PostgresAuthorizationCodeRepository>();
        services.AddSingleton<OidcFlow>();
        services.AddSingleton<IPurgeable>(provider => provider.GetRequiredService<OidcFlow>());
        return services;
    }

    public static IEndpointRouteBuilder MapOidc(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/oauth/authorize", AuthorizeAsync).WithTags("OpenID Connect");
        endpoints.MapMethods("/oauth/userinfo", [HttpMethods.Get, HttpMethods.Post], UserInfoAsync).WithTags("OpenID Connect").DisableAntiforgery();
        endpoints.MapGet("/.well-known/openid-configuration", Discovery).WithTags("OpenID Connect");
        endpoints.MapMethods("/oauth/logout", [HttpMethods.Get, HttpMethods.Post], LogoutAsync).WithTags("OpenID Connect").DisableAntiforgery();
        return endpoints;
    }

    /// <summary>
    /// GET /oauth/authorize. A bad client_id or redirect_uri gets the 400 page, never a redirect; every later error goes
    /// back to the validated redirect URI (RFC 6749 section 4.1.2.1) with the client's state and the broker's iss.
    /// </summary>
    public static async Task<IResult> AuthorizeAsync(
        HttpContext context, AllowlistProvider allowlist, PendingLoginStore logins, GitHubIntegrations gitHub, IOptions<BrokerOptions> broker, AuditLog audit, ILogger<OidcFlow> logger, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        async Task<IResult> RefuseAsync(string? instanceId, string reason, int status = StatusCodes.Status400BadRequest)
        {
            Log.Refused(logger, reason);
            await audit.RecordRefusalAsync(instanceId, reason, context.Connection.RemoteIpAddress, cancellationToken);
            return Refusal.For(context.Request, "Sign-in refused", reason, status);
        }

        if (SingleParameters.FirstOrDefault(name => query[name].Count > 1) is { } repeated)
        {
            return await RefuseAsync(null, $"{repeated} is given more than once.");
        }

        var clientId = query["client_id"].ToString();
        if (clientId.Length == 0 || !allowlist.Current.Instances.TryGetValue(clientId, out var instance))
        {
            return await RefuseAsync(null, "client_id is missing or names no client of this broker.");
        }

        // The registered redirect URI as registered (a loopback one on any port): a Trackeep base URL is no OAuth redirect URI.
        if (!allowlist.Current.TryMatch(query["redirect_uri"].ToString(), out var target, out var reason) || target.ViaBaseUrl || target.Instance.Id != instance.Id)
        {
            return await RefuseAsync(instance.Id, reason is null || target is not null ? "redirect_uri is not registered for this client." : reason + ".");
        }

        var state = query["state"].Count == 0 ? null : query["state"].ToString();
        var responseMode = query["response_mode"].Count == 0 ? InstanceResponse.Query : query["response_mode"].ToString();
        if (!InstanceResponse.Modes.Contains(responseMode, StringComparer.Ordinal))
        {
            responseMode = InstanceResponse.Query;
            return await ErrorAsync("invalid_request", "response_mode must be query, fragment or form_post.");
        }

        async Task<IResult> ErrorAsync(string error, string description)
        {
            Log.Refused(logger, description);
            await audit.RecordRefusalAsync(instance.Id, description, context.Connection.RemoteIpAddress, cancellationToken);
            return InstanceResponse.To(target.Uri.ToString(), responseMode,
                [new("error", error), new("error_description", description), new("state", state), new("iss", broker.Value.Issuer)]);
        }

        if (!LoginEndpoints.IsAcceptableState(state))
        {
            state = null;
            return await ErrorAsync("invalid_request", $"state must be at most {LoginEndpoints.MaxInstanceStateLength} characters without control characters.");
        }

        if (instance.Disabled)
        {
            return await ErrorAsync("unauthorized_client", LoginEndpoints.DisabledReason);
        }

        if (query["response_type"] != "code")
        {
            return await ErrorAsync("unsupported_response_type", "response_type must be code.");
        }

        var nonce = query["nonce"].Count == 0 ? null : query["nonce"].ToString();
        if (nonce is { Length: 0 or > MaxNonceLength } || (nonce?.Any(c => c is < ' ' or > '~') ?? false))
        {
            return await ErrorAsync("invalid_request", $"nonce must be 1 to {MaxNonceLength} printable ASCII characters.");
        }

        var prompts = query["prompt"].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (prompts.Any(prompt => !Prompts.Contains(prompt, StringComparer.Ordinal)))
        {
            return await ErrorAsync("invalid_request", "prompt must be none, login, consent or select_account.");
        }

        // The broker always sends the user through GitHub, whose pages it cannot promise to skip.
        if (prompts.Contains("none"))
        {
            return await ErrorAsync("login_required", "The broker cannot sign a user in without sending them to GitHub.");
        }

        var challenge = query["code_challenge"].Count == 0 ? null : query["code_challenge"].ToString();
        var method = query["code_challenge_method"].Count == 0 ? null : query["code_challenge_method"].ToString();
        if (challenge is not null && (method != "S256" || !PendingLoginStore.IsEncoded256Bits(challenge)))
        {
            return await ErrorAsync("invalid_request", "code_challenge must be the 43-character S256 challenge, with code_challenge_method=S256 (plain is not supported).");
        }

        if (challenge is null && method is not null)
        {
            return await ErrorAsync("invalid_request", "code_challenge_method was sent without a code_challenge.");
        }

        if (challenge is null && instance.Public)
        {
            return await ErrorAsync("invalid_request", "PKCE is required for a public client: send code_challenge with code_challenge_method=S256.");
        }

        var scopeText = query["scope"].ToString();
        if (scopeText.Length > MaxScopeLength)
        {
            return await ErrorAsync("invalid_scope", $"scope is longer than {MaxScopeLength} characters.");
        }

        // Scope values the broker does not know are ignored (OpenID Connect Core 3.1.2.1); github:X is GitHub's scope X.
        var requested = scopeText.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var oidcScopes = OidcScopes.Where(requested.Contains).ToArray();
        var gitHubScopes = requested.Where(value => value.StartsWith(GitHubScopePrefix, StringComparison.Ordinal)).Select(value => value[GitHubScopePrefix.Length..]).ToArray();
        if (gitHub.For(instance) is not { } integration)
        {
            return await ErrorAsync("temporarily_unavailable", GitHubIntegrations.MissingGitHubApp);
        }

        if (gitHubScopes.Length > 0 && !integration.UsesScopes)
        {
            return await ErrorAsync("invalid_scope", "This client signs in through a GitHub App, which takes no scopes: its reach is the app's permissions.");
        }

        if (!Scopes.TryResolve(gitHubScopes.Length == 0 ? null : string.Join(' ', gitHubScopes), gitHub.OAuthApp.DefaultScopes, instance.AllowedScopes, out var scope, out var scopeError))
        {
            return await ErrorAsync("invalid_scope", scopeError + ".");
        }

        var request = JsonSerializer.Serialize(new OidcRequest(oidcScopes, nonce, challenge), OidcJsonContext.Default.OidcRequest);
        var oidcScopeList = string.Join(' ', oidcScopes);
        Log.Started(logger, instance.Id, oidcScopeList, scope);
        return await LoginEndpoints.BeginAuthorizationAsync(context, logins, integration, broker.Value, instance.Id, target.Uri.ToString(), state, scope, responseMode, cancellationToken, request);
    }

    /// <summary>GET or POST /oauth/userinfo with the access token of a code's redemption (OpenID Connect Core 5.3).</summary>
    public static async Task<IResult> UserInfoAsync(HttpContext context, BrokerTokenValidator validator, OidcFlow flow, IUserStore users, CancellationToken cancellationToken)
    {
        context.Response.Headers.CacheControl = "no-store";
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length > BrokerTokenValidator.MaxTokenBytes)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            return TypedResults.Unauthorized();
        }

        var result = await validator.ValidateAccessTokenAsync(header[7..].Trim());
        var claims = result.IsValid ? result.Claims : null;
        if (claims is null || Text(claims, "grant") is not { } grant || await flow.IsRevokedAsync(grant, cancellationToken)
            || Text(claims, "sub") is not { } subject || !long.TryParse(subject, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var userId)
            || await users.FindAsync(userId, cancellationToken) is not { } user)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
            return TypedResults.Unauthorized();
        }

        var scopes = (Text(claims, "scope") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var answer = new Dictionary<string, object> { ["sub"] = subject };
        foreach (var (name, value) in OidcFlow.ProfileClaims(user, scopes))
        {
            answer[name] = value;
        }

        return TypedResults.Json(answer, OidcJsonContext.Default.DictionaryStringObject);
    }

    /// <summary>
    /// OpenID Connect RP-Initiated Logout 1.0. The broker keeps no sign-in session of its own (every sign-in passes
    /// through GitHub), so there is nothing to end here; what it must not do is become an open redirector. A
    /// <c>post_logout_redirect_uri</c> is followed only when it is registered, exactly, for the client that an
    /// <c>id_token_hint</c> (the broker's own ID token, possibly expired) or <c>client_id</c> names, and when both are
    /// given they must agree. Anything else gets a page, never a redirect.
    /// </summary>
    public static async Task<IResult> LogoutAsync(HttpContext context, AllowlistProvider allowlist, BrokerTokenValidator validator, CancellationToken cancellationToken)
    {
        context.Response.Headers.CacheControl = "no-store";
        var parameters = HttpMethods.IsPost(context.Request.Method) && context.Request.HasFormContentType
            ? (IEnumerable<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>>)await context.Request.ReadFormAsync(cancellationToken)
            : context.Request.Query;
        var values = parameters.ToDictionary(pair => pair.Key, pair => pair.Value, StringComparer.Ordinal);
        string? One(string name) => values.TryGetValue(name, out var value) && value.Count == 1 ? value.ToString() : null;
        if (values.Any(pair => pair.Value.Count > 1))
        {
            return HtmlPage.Error("Not signed out", "A parameter is given more than once.");
        }

        string? clientId = One("client_id");
        if (One("id_token_hint") is { } hint)
        {
            var result = hint.Length <= BrokerTokenValidator.MaxTokenBytes ? await validator.ValidateIdTokenHintAsync(hint) : null;
            if (result is not { IsValid: true } || Text(result.Claims, "aud") is not { } audience || (clientId is not null && clientId != audience))
            {
                return HtmlPage.Error("Not signed out", "The id_token_hint is not an ID token this broker issued to this client.");
            }

            clientId = audience;
        }

        var signedOut = "<p id=\"signed-out\">You are signed out of the application. The broker keeps no sign-in of its own; to sign out of GitHub too, sign out there.</p>";
        if (One("post_logout_redirect_uri") is not { } requested)
        {
            return HtmlPage.Render("Signed out", signedOut);
        }

        if (clientId is null || !allowlist.Current.Instances.TryGetValue(clientId, out var instance)
            || !RedirectUri.TryParse(requested, allowWildcard: false, out var uri, out _)
            || !instance.PostLogoutRedirectUris.Any(registered => registered.ToString() == uri.ToString()))
        {
            return HtmlPage.Error("Not redirected", "post_logout_redirect_uri is not registered for this client (its entry's postLogoutRedirectUris), or no client was named.");
        }

        var target = One("state") is { Length: > 0 and <= LoginEndpoints.MaxInstanceStateLength } state
            ? Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString(uri.ToString(), "state", state)
            : uri.ToString();
        return TypedResults.Redirect(target);
    }

    private static string? Text(IDictionary<string, object> claims, string name) => claims.TryGetValue(name, out var value) ? value as string : null;

    private static readonly string[] ResponseTypes = ["code"];
    private static readonly string[] GrantTypes = ["authorization_code", "refresh_token"];
    private static readonly string[] SubjectTypes = ["public"];
    private static readonly string[] ChallengeMethods = ["S256"];

    /// <summary>OpenID Connect Discovery 1.0: every endpoint, and nothing the broker does not do.</summary>
    public static IResult Discovery(IOptions<BrokerOptions> broker, GitHubIntegrations gitHub, AllowlistProvider allowlist) =>
        TypedResults.Json(ProviderMetadata(broker.Value, gitHub, allowlist.Current), OidcJsonContext.Default.DictionaryStringObject);

    /// <summary>The members OpenID Connect discovery and RFC 8414 metadata share.</summary>
    public static Dictionary<string, object> ProviderMetadata(BrokerOptions broker, GitHubIntegrations gitHub, AllowlistSnapshot allowlist)
    {
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(gitHub);
        ArgumentNullException.ThrowIfNull(allowlist);
        var issuer = broker.Issuer;
        var gitHubScopes = gitHub.OAuthApp.DefaultScopes.Concat(allowlist.Instances.Values.SelectMany(instance => instance.AllowedScopes))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(scope => GitHubScopePrefix + scope);
        return new Dictionary<string, object>
        {
            ["issuer"] = issuer,
            ["authorization_endpoint"] = issuer + "/oauth/authorize",
            ["token_endpoint"] = issuer + "/oauth/token",
            ["userinfo_endpoint"] = issuer + "/oauth/userinfo",
            ["jwks_uri"] = issuer + "/.well-known/jwks.json",
            ["revocation_endpoint"] = issuer + "/oauth/revoke",
            ["end_session_endpoint"] = issuer + "/oauth/logout",
            ["response_types_supported"] = ResponseTypes,
            ["response_modes_supported"] = InstanceResponse.Modes,
            ["grant_types_supported"] = GrantTypes,
            ["subject_types_supported"] = SubjectTypes,
            ["id_token_signing_alg_values_supported"] = new[] { broker.SigningAlgorithm },
            ["scopes_supported"] = OidcScopes.Concat(gitHubScopes).ToArray(),
            ["claims_supported"] = Claims,
            ["token_endpoint_auth_methods_supported"] = Lifecycle.ClientAuthenticator.Methods.Append("none").ToArray(),
            ["token_endpoint_auth_signing_alg_values_supported"] = Lifecycle.ClientKey.Algorithms,
            ["revocation_endpoint_auth_methods_supported"] = Lifecycle.ClientAuthenticator.Methods,
            ["revocation_endpoint_auth_signing_alg_values_supported"] = Lifecycle.ClientKey.Algorithms,
            ["code_challenge_methods_supported"] = ChallengeMethods,
            ["prompt_values_supported"] = Prompts,
            ["authorization_response_iss_parameter_supported"] = true,
            ["claims_parameter_supported"] = false,
            ["request_parameter_supported"] = false,
            ["request_uri_parameter_supported"] = false,
        };
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 10001, Level = LogLevel.Information, Message = "OpenID Connect sign-in started for client {ClientId} with scopes '{OidcScopes}' and GitHub scope '{Scope}'")]
        public static partial void Started(ILogger logger, string clientId, string oidcScopes, string scope);

        [LoggerMessage(EventId = 10002, Level = LogLevel.Warning, Message = "Refused /oauth/authorize: {Reason}")]
        public static partial void Refused(ILogger logger, string reason);
    }
}
