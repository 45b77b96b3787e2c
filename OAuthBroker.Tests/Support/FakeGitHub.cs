using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OAuthBroker.Tests.Support;

public enum TokenFault
{
    None,
    ServerError,
    MalformedJson,
    Slow,
    ErrorField,
    DropConnection,
}

public enum UserFault
{
    None,
    Unauthorized,
    ServerError,
    MalformedJson,
    RateLimited,
    TooManyRequests,
}

public sealed record FakeGitHubUser(long Id, string Login, string? Name, string? PublicEmail, string PrimaryEmail, string AvatarUrl)
{
    public static FakeGitHubUser Random()
    {
        var id = System.Random.Shared.NextInt64(1_000, 900_000_000);
        return new FakeGitHubUser(id, $"octo-{id}", $"Octo {id}", null, $"octo-{id}@users.example.com", $"https://avatars.example.com/u/{id}");
    }
}

public sealed record TokenRequest(string? ClientId, string? Code, string? RedirectUri, string? CodeVerifier, string? Accept);

/// <summary>A request the fake GitHub answered, as its transport saw it.</summary>
public sealed record FakeGitHubRequest(string Protocol, string ConnectionId, string Path);

/// <summary>
/// A GitHub stand-in on 127.0.0.1 that behaves like github.com where it matters to the broker: the authorize redirect,
/// a code exchange that answers errors with HTTP 200, form-encoded answers without Accept: application/json, PKCE
/// (S256) checks, single-use codes, private e-mail addresses, a User-Agent requirement, and injectable faults.
/// API paths use the GitHub Enterprise layout (/api/v3) so the broker's Enterprise support is exercised.
/// </summary>
public sealed class FakeGitHub : IAsyncDisposable
{
    public const string ClientId = "Iv1.fake0client0id";

    /// <summary>The GitHub App beside the OAuth App: its own client id and secret; its user tokens expire (ghu_).</summary>
    public const string AppClientId = "Iv23li0fake0app0id";

    public const string AppSlug = "broker-test-app";

    private readonly WebApplication app;
    private readonly ConcurrentDictionary<string, IssuedCode> codes = new();
    private readonly ConcurrentDictionary<string, IssuedToken> tokens = new();
    private readonly ConcurrentDictionary<string, string> refreshTokens = new();
    private readonly ConcurrentDictionary<string, IssuedToken> revokedWithLiveRefresh = new();
    private readonly ConcurrentQueue<string> issuedSecrets = new();
    private readonly ConcurrentDictionary<long, (string Account, long[] Users)> installations = new();
    private int refreshCalls;
    private int revokeCalls;
    private int requestsWithTraceContext;
    private int grantRevokeCalls;
    private int userCalls;

    private readonly ConcurrentQueue<FakeGitHubRequest> requests = new();

    private FakeGitHub(WebApplication app) => this.app = app;

    private static X509Certificate2 SelfSignedLoopbackCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=fake GitHub on 127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
    }

    public string ClientSecret { get; } = "fake_secret_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));

    public string AppClientSecret { get; } = "fake_app_secret_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));

    /// <summary>The app's callback URL as registered on GitHub (the broker's <c>/auth/github/callback</c>), where its installation page returns.</summary>
    public string? AppCallbackUrl { get; set; }

    /// <summary>What the installation page does: <c>install</c>, <c>update</c>, or <c>request</c> (a member asks an owner).</summary>
    public string InstallSetupAction { get; set; } = "install";

    /// <summary>The app setting "Request user authorization (OAuth) during installation": the return carries a code.</summary>
    public bool InstallRequestsUserAuthorization { get; set; } = true;

    public long NextInstallationId { get; set; } = 4242;

    public string InstallationAccount { get; set; } = "octo-org";

    /// <summary>The GitHub App's webhook secret, with which every delivery of <see cref="Delivery"/> is signed.</summary>
    public string WebhookSecret { get; } = "fake_webhook_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));

    /// <summary>Whether the GitHub App has the "Email addresses" permission: without it, GET /user/emails answers 403.</summary>
    public bool AppEmailPermission { get; set; } = true;

    /// <summary>Whether the GitHub App's user tokens expire (the app setting, on by default on GitHub).</summary>
    public bool AppExpiringTokens { get; set; } = true;

    /// <summary>Whether DELETE /applications/{client_id}/token also ends the refresh token issued with the access token (undocumented; off).</summary>
    public bool RevokeEndsRefreshToken { get; set; }

    /// <summary>Whether GitHub would still refresh with <paramref name="refreshToken"/>.</summary>
    public bool IsLiveRefreshToken(string refreshToken) => refreshTokens.ContainsKey(refreshToken);

    /// <summary>DELETE /applications/{client_id}/grant calls, whatever their outcome.</summary>
    public int GrantRevokeCallCount => Volatile.Read(ref grantRevokeCalls);

    /// <summary>The key-encryption key of the brokers that use this fake (their key ring is encrypted with it).</summary>
    public string KeyEncryptionKey { get; } = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public string BaseUrl { get; private set; } = "";

    public string ApiUrl => BaseUrl + "/api/v3";

    public FakeGitHubUser User { get; set; } = FakeGitHubUser.Random();

    public bool Deny { get; set; }

    public bool ExpiringTokens { get; set; }

    /// <summary>What GitHub grants; null grants what was asked.</summary>
    public string? GrantedScope { get; set; }

    public TokenFault TokenFault { get; set; }

    public string TokenErrorCode { get; set; } = "bad_verification_code";

    public UserFault UserFault { get; set; }

    /// <summary>GET /user answers 502 this many times before it answers properly (a transient outage).</summary>
    public int UserFailuresBeforeSuccess { get; set; }

    public int UserCallCount => userCalls;

    public TimeSpan SlowDelay { get; set; } = TimeSpan.FromSeconds(5);

    public ConcurrentQueue<TokenRequest> TokenRequests { get; } = new();

    public ConcurrentQueue<IReadOnlyDictionary<string, string>> AuthorizeRequests { get; } = new();

    /// <summary>Every access and refresh token handed out, and the client secret: none may leak.</summary>
    /// <summary>Every secret value GitHub and the broker exchanged: issued tokens, refresh tokens, the client secret and the PKCE verifiers received.</summary>
    public IEnumerable<string> Secrets => issuedSecrets.Append(ClientSecret).Append(AppClientSecret).Append(WebhookSecret)
        .Concat(TokenRequests.Select(request => request.CodeVerifier).OfType<string>().Where(verifier => verifier.Length >= 43));

    public int TokenCallCount => TokenRequests.Count;

    /// <summary>Requests that carried a W3C or legacy trace header (traceparent, tracestate, baggage, Request-Id, Correlation-Context).</summary>
    public int RequestsWithTraceContext => Volatile.Read(ref requestsWithTraceContext);

    /// <summary>DELETE /applications/{client_id}/token calls, whatever their outcome.</summary>
    public int RevokeCallCount => Volatile.Read(ref revokeCalls);

    /// <summary>Refreshes asked of the token endpoint (grant_type=refresh_token), whatever their outcome.</summary>
    public int RefreshCallCount => Volatile.Read(ref refreshCalls);

    /// <summary>The HTTP status of a bad_refresh_token answer: GitHub has been seen to send 200 and 400.</summary>
    public int RefreshErrorStatus { get; set; } = 200;

    /// <summary>How long a refresh takes, to hold concurrent refreshes of one token in flight together.</summary>
    public TimeSpan RefreshDelay { get; set; }

    /// <summary>Refreshes answer 502, as during an outage.</summary>
    public bool RefreshUnavailable { get; set; }

    /// <summary>Whether the access token still works at GitHub's API (refresh and revocation end it).</summary>
    public bool IsLive(string accessToken) => tokens.ContainsKey(accessToken);

    /// <summary>How many tokens of this app still work, for every user.</summary>
    public int LiveTokenCount(string clientId) => tokens.Values.Count(token => token.ClientId == clientId);

    /// <summary>Which app issued a live token: <see cref="ClientId"/> or <see cref="AppClientId"/>.</summary>
    public string? IssuerOf(string accessToken) => tokens.TryGetValue(accessToken, out var token) ? token.ClientId : null;

    /// <summary>
    /// Drops the tokens and the request history kept so far, for a long benchmark between runs (nothing in flight):
    /// hundreds of thousands of flows would otherwise grow this process's heap, and its collections would take
    /// CPU from the server being measured.
    /// </summary>
    public void ForgetIssued()
    {
        tokens.Clear();
        refreshTokens.Clear();
        issuedSecrets.Clear();
        TokenRequests.Clear();
        AuthorizeRequests.Clear();
        requests.Clear();
    }

    /// <summary>What a broker needs to use this fake, as configuration keys; rate limits are off (every test client is one address).</summary>
    public Dictionary<string, string?> BrokerSettings() => new()
    {
        ["GitHub:ClientId"] = ClientId,
        ["GitHub:ClientSecret"] = ClientSecret,
        ["GitHub:BaseUrl"] = BaseUrl,
        ["GitHub:ApiUrl"] = ApiUrl,
        ["GitHubApp:ClientId"] = AppClientId,
        ["GitHubApp:ClientSecret"] = AppClientSecret,
        ["GitHubApp:Slug"] = AppSlug,
        ["GitHubApp:BaseUrl"] = BaseUrl,
        ["GitHubApp:ApiUrl"] = ApiUrl,
        ["GitHubApp:WebhookSecret"] = WebhookSecret,
        ["Broker:KeyEncryptionKey"] = KeyEncryptionKey,
        ["RateLimits:LoginPerClientPerMinute"] = "0",
        ["RateLimits:LoginPerInstancePerMinute"] = "0",
        ["RateLimits:UserInfoPerClientPerMinute"] = "0",
    };

    /// <summary>Configuration keys as environment variables (Section__Key), for a broker in its own process.</summary>
    public static Dictionary<string, string?> AsEnvironment(IEnumerable<KeyValuePair<string, string?>> settings) =>
        settings.ToDictionary(setting => setting.Key.Replace(":", "__", StringComparison.Ordinal), setting => (string?)(setting.Value ?? ""));

    /// <summary>
    /// A webhook delivery to the broker as GitHub makes one: a JSON body, <c>X-GitHub-Event</c>, a GUID
    /// <c>X-GitHub-Delivery</c>, the app's hook headers, and <c>X-Hub-Signature-256</c> (and the legacy SHA-1
    /// <c>X-Hub-Signature</c>) computed over the exact bytes sent, with <paramref name="secret"/> (the app's by default).
    /// </summary>
    public HttpRequestMessage Delivery(string eventName, JsonObject payload, string? deliveryId = null, string? secret = null)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var body = Encoding.UTF8.GetBytes(payload.ToJsonString());
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/github") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Headers.TryAddWithoutValidation("User-Agent", "GitHub-Hookshot/7d5b2f1");
        request.Headers.Add("X-GitHub-Event", eventName);
        request.Headers.Add("X-GitHub-Delivery", deliveryId ?? Guid.NewGuid().ToString());
        request.Headers.Add("X-GitHub-Hook-ID", "424242");
        request.Headers.Add("X-GitHub-Hook-Installation-Target-Type", "integration");
        request.Headers.Add("X-GitHub-Hook-Installation-Target-ID", "31337");
        var key = Encoding.UTF8.GetBytes(secret ?? WebhookSecret);
        request.Headers.Add("X-Hub-Signature-256", "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(key, body)));
#pragma warning disable CA5350 // GitHub still sends the SHA-1 signature beside the SHA-256 one; the broker ignores it.
        request.Headers.Add("X-Hub-Signature", "sha1=" + Convert.ToHexStringLower(HMACSHA1.HashData(key, body)));
#pragma warning restore CA5350
        return request;
    }

    /// <summary><c>github_app_authorization</c>: the user revoked the app (GitHub sends only the action and the sender).</summary>
    public static JsonObject AppAuthorizationRevoked(FakeGitHubUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return new JsonObject { ["action"] = "revoked", ["sender"] = Sender(user) };
    }

    /// <summary><c>installation</c> or <c>installation_repositories</c> for installation <paramref name="installationId"/> on <paramref name="account"/>.</summary>
    public static JsonObject InstallationEvent(string action, long installationId, string account, FakeGitHubUser sender)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return new JsonObject
        {
            ["action"] = action,
            ["installation"] = new JsonObject
            {
                ["id"] = installationId,
                ["account"] = new JsonObject { ["login"] = account, ["id"] = 9000 + installationId, ["type"] = "Organization" },
                ["app_slug"] = AppSlug,
                ["repository_selection"] = "selected",
            },
            ["repositories_added"] = new JsonArray(new JsonObject { ["id"] = 1296269, ["full_name"] = account + "/hello-world", ["private"] = false }),
            ["repositories_removed"] = new JsonArray(),
            ["sender"] = Sender(sender),
        };
    }

    private static JsonObject Sender(FakeGitHubUser user) => new() { ["login"] = user.Login, ["id"] = user.Id, ["type"] = "User", ["site_admin"] = false };

    /// <summary>The certificate of a fake started with TLS: self-signed, for 127.0.0.1 (with its private key).</summary>
    public X509Certificate2? Certificate { get; private set; }

    /// <summary>With TLS, every request this fake answered: its HTTP version as Kestrel read it ("HTTP/1.1", "HTTP/2"), its connection and path.</summary>
    public IReadOnlyCollection<FakeGitHubRequest> Requests => [.. requests];

    /// <summary>
    /// <paramref name="tls"/>: HTTPS with these protocols, as GitHub's own transport (github.com and api.github.com
    /// negotiate HTTP/2); <c>Http2</c> alone refuses a client that cannot at the handshake. Without it, plain HTTP/1.1.
    /// </summary>
    public static async Task<FakeGitHub> StartAsync(HttpProtocols? tls = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        X509Certificate2? certificate = null;
        if (tls is { } protocols)
        {
            certificate = SelfSignedLoopbackCertificate();
            builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = protocols;
                listen.UseHttps(certificate);
            }));
        }
        else
        {
            builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        }

        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeGitHub(app) { Certificate = certificate };
        app.Use((context, next) =>
        {
            var headers = context.Request.Headers;
            if (headers.ContainsKey("traceparent") || headers.ContainsKey("tracestate") || headers.ContainsKey("baggage") || headers.ContainsKey("Request-Id") || headers.ContainsKey("Correlation-Context"))
            {
                Interlocked.Increment(ref fake.requestsWithTraceContext);
            }

            return next(context);
        });
        if (certificate is not null)
        {
            app.Use((context, next) =>
            {
                fake.requests.Enqueue(new FakeGitHubRequest(context.Request.Protocol, context.Connection.Id, context.Request.Path.Value ?? ""));
                return next(context);
            });
        }

        fake.Map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        fake.BaseUrl = address.TrimEnd('/');
        return fake;
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
        Certificate?.Dispose();
    }

    private void Map(WebApplication web)
    {
        web.MapGet("/login/oauth/authorize", Authorize);
        web.MapPost("/login/oauth/access_token", (Func<HttpContext, Task<IResult>>)ExchangeAsync);
        web.MapGet("/api/v3/user", (Func<HttpContext, Task<IResult>>)GetUserAsync);
        web.MapGet("/api/v3/user/emails", GetEmails);
        web.MapGet("/apps/{slug}/installations/new", Install);
        web.MapGet("/api/v3/user/installations", ListInstallations);
        web.MapDelete("/api/v3/applications/{clientId}/token", (Func<HttpContext, string, Task<IResult>>)RevokeAsync);
        web.MapDelete("/api/v3/applications/{clientId}/grant", (Func<HttpContext, string, Task<IResult>>)RevokeGrantAsync);
    }

    private IResult Authorize(HttpRequest request)
    {
        var query = request.Query.ToDictionary(pair => pair.Key, pair => pair.Value.ToString());
        AuthorizeRequests.Enqueue(query);
        var clientId = query.GetValueOrDefault("client_id");
        if (clientId != ClientId && clientId != AppClientId)
        {
            return Results.NotFound();
        }

        var redirectUri = query["redirect_uri"];
        var state = query.GetValueOrDefault("state");
        if (Deny)
        {
            return Results.Redirect(QueryHelpers.AddQueryString(redirectUri, new Dictionary<string, string?>
            {
                ["error"] = "access_denied",
                ["error_description"] = "The user has denied your application access.",
                ["error_uri"] = "https://docs.github.com/apps/troubleshooting",
                ["state"] = state,
            }));
        }

        var code = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));
        // A GitHub App's reach is its permissions: GitHub ignores scope and its tokens carry none.
        var scope = clientId == AppClientId ? "" : GrantedScope ?? query.GetValueOrDefault("scope") ?? "";
        codes[code] = new IssuedCode(clientId!, redirectUri, query.GetValueOrDefault("code_challenge"), query.GetValueOrDefault("code_challenge_method"), scope, User, DateTimeOffset.UtcNow.AddMinutes(10));
        return Results.Redirect(QueryHelpers.AddQueryString(redirectUri, new Dictionary<string, string?> { ["code"] = code, ["state"] = state }));
    }

    private async Task<IResult> ExchangeAsync(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync();
        var accept = context.Request.Headers.Accept.ToString();
        if (form["grant_type"] == "refresh_token")
        {
            return await RefreshAsync(context, form, accept);
        }

        TokenRequests.Enqueue(new TokenRequest(form["client_id"], form["code"], form["redirect_uri"], form["code_verifier"], accept));
        switch (TokenFault)
        {
            case TokenFault.ServerError:
                return Results.Content("<html>Unicorn!</html>", "text/html", statusCode: 502);
            case TokenFault.MalformedJson:
                return Results.Content("{\"access_token\": ", "application/json");
            case TokenFault.Slow:
                await Task.Delay(SlowDelay, context.RequestAborted);
                break;
            case TokenFault.ErrorField:
                return Answer(accept, new() { ["error"] = TokenErrorCode, ["error_description"] = "The code passed is incorrect or expired.", ["error_uri"] = "https://docs.github.com/apps/troubleshooting" });
            case TokenFault.DropConnection:
                context.Abort();
                return Results.Empty;
            default:
                break;
        }

        // GitHub's quirk: every error below is HTTP 200 with an "error" field.
        if (!IsClient(form["client_id"], form["client_secret"]))
        {
            return Answer(accept, new() { ["error"] = "incorrect_client_credentials", ["error_description"] = "The client_id and/or client_secret passed are incorrect." });
        }

        // A code is good only with the app it was issued for.
        if (!codes.TryRemove(form["code"].ToString(), out var issued) || issued.ExpiresAt < DateTimeOffset.UtcNow || issued.ClientId != form["client_id"])
        {
            return Answer(accept, new() { ["error"] = "bad_verification_code", ["error_description"] = "The code passed is incorrect or expired." });
        }

        if (form["redirect_uri"].Count > 0 && form["redirect_uri"] != issued.RedirectUri)
        {
            return Answer(accept, new() { ["error"] = "redirect_uri_mismatch", ["error_description"] = "The redirect_uri MUST match the registered callback URL for this application." });
        }

        if (issued.CodeChallenge is not null)
        {
            var verifier = form["code_verifier"].ToString();
            var expected = issued.CodeChallengeMethod == "S256"
                ? Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)))
                : verifier;
            if (verifier.Length is < 43 or > 128 || expected != issued.CodeChallenge)
            {
                return Answer(accept, new() { ["error"] = "bad_verification_code", ["error_description"] = "The code_verifier does not match the code_challenge." });
            }
        }

        var isApp = issued.ClientId == AppClientId;
        return Answer(accept, Issue(issued.ClientId, issued.User, issued.Scope, isApp ? AppExpiringTokens : ExpiringTokens));
    }

    private bool IsClient(string? clientId, string? secret) =>
        (clientId == ClientId && secret == ClientSecret) || (clientId == AppClientId && secret == AppClientSecret);

    private Dictionary<string, object?> Issue(string clientId, FakeGitHubUser user, string scope, bool expiring)
    {
        // GitHub App user tokens start ghu_, OAuth App tokens gho_ (expiring or not).
        var token = (clientId == AppClientId ? "ghu_" : "gho_") + RandomAlphanumeric(36);
        var refresh = expiring ? "ghr_" + RandomAlphanumeric(76) : null;
        tokens[token] = new IssuedToken(clientId, user, scope, refresh);
        issuedSecrets.Enqueue(token);
        if (refresh is not null)
        {
            issuedSecrets.Enqueue(refresh);
        }

        var answer = new Dictionary<string, object?>
        {
            ["access_token"] = token,
            ["token_type"] = "bearer",
            ["scope"] = string.Join(',', scope.Split(' ', StringSplitOptions.RemoveEmptyEntries)),
        };
        if (refresh is not null)
        {
            refreshTokens[refresh] = token;
            answer["expires_in"] = 28800;
            answer["refresh_token"] = refresh;
            answer["refresh_token_expires_in"] = 15897600;
        }

        return answer;
    }

    /// <summary>
    /// GitHub's refresh: single use with rotation. The refresh token and the access token it came with stop working at
    /// once; a dead or reused one gets bad_refresh_token, with HTTP 200 or (<see cref="RefreshErrorStatus"/>) 400.
    /// </summary>
    private async Task<IResult> RefreshAsync(HttpContext context, IFormCollection form, string accept)
    {
        Interlocked.Increment(ref refreshCalls);
        if (RefreshDelay > TimeSpan.Zero)
        {
            await Task.Delay(RefreshDelay, context.RequestAborted);
        }

        if (RefreshUnavailable)
        {
            return Results.Content("<html>Unicorn!</html>", "text/html", statusCode: 502);
        }

        if (!IsClient(form["client_id"], form["client_secret"]))
        {
            return Answer(accept, new() { ["error"] = "incorrect_client_credentials", ["error_description"] = "The client_id and/or client_secret passed are incorrect." });
        }

        // Another app's refresh token is unknown to this one, and left as it was.
        var presented = form["refresh_token"].ToString();
        if (!refreshTokens.TryGetValue(presented, out var owner)
            || (IssuerOf(owner) ?? (revokedWithLiveRefresh.TryGetValue(presented, out var revoked) ? revoked.ClientId : null)) != form["client_id"]
            || !refreshTokens.TryRemove(presented, out var accessToken)
            || !(tokens.TryRemove(accessToken, out var previous) || revokedWithLiveRefresh.TryRemove(presented, out previous)))
        {
            var error = new Dictionary<string, object?> { ["error"] = "bad_refresh_token", ["error_description"] = "The refresh token passed is incorrect or expired.", ["error_uri"] = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors" };
            return RefreshErrorStatus == 200 ? Answer(accept, error) : Results.Json(error, statusCode: RefreshErrorStatus);
        }

        return Answer(accept, Issue(previous.ClientId, previous.User, previous.Scope, expiring: true));
    }

    /// <summary>
    /// DELETE /applications/{client_id}/token: Basic auth with the app's client id and secret, body {"access_token"};
    /// 204 when revoked, 404 for a token GitHub does not know (already revoked, never issued), 401 for bad credentials.
    /// </summary>
    private async Task<IResult> RevokeAsync(HttpContext context, string clientId)
    {
        Interlocked.Increment(ref revokeCalls);
        var (token, refusal) = await ReadAppRequestAsync(context, clientId);
        if (refusal is not null)
        {
            return refusal;
        }

        // A token of another app is not found under this one.
        if (IssuerOf(token!) != clientId || !tokens.TryRemove(token!, out var issued))
        {
            return Results.Json(new { message = "Not Found" }, statusCode: 404);
        }

        // GitHub documents this call as revoking the one token; whether the refresh token issued with it dies is not
        // documented, so the fake keeps it unless a test says otherwise.
        if (issued.RefreshToken is { } refresh)
        {
            if (RevokeEndsRefreshToken)
            {
                refreshTokens.TryRemove(refresh, out _);
            }
            else
            {
                // The refresh token still refreshes: it remembers what the revoked access token was issued for.
                revokedWithLiveRefresh[refresh] = issued;
            }
        }

        return Results.NoContent();
    }

    /// <summary>
    /// DELETE /applications/{client_id}/grant: given one live token of the user, ends every token of that user for
    /// that app (the whole authorization); 404 for a token GitHub does not know.
    /// </summary>
    private async Task<IResult> RevokeGrantAsync(HttpContext context, string clientId)
    {
        Interlocked.Increment(ref grantRevokeCalls);
        var (token, refusal) = await ReadAppRequestAsync(context, clientId);
        if (refusal is not null)
        {
            return refusal;
        }

        if (!tokens.TryGetValue(token!, out var presented) || presented.ClientId != clientId)
        {
            return Results.Json(new { message = "Not Found" }, statusCode: 404);
        }

        foreach (var (value, issued) in tokens)
        {
            if (issued.ClientId == clientId && issued.User.Id == presented.User.Id && tokens.TryRemove(value, out _) && issued.RefreshToken is { } refresh)
            {
                refreshTokens.TryRemove(refresh, out _);
            }
        }

        return Results.NoContent();
    }

    /// <summary>The /applications/{client_id}/... calls: Basic auth with that app's client id and secret, body {"access_token"}.</summary>
    private async Task<(string? Token, IResult? Refusal)> ReadAppRequestAsync(HttpContext context, string clientId)
    {
        var secret = clientId == ClientId ? ClientSecret : clientId == AppClientId ? AppClientSecret : null;
        var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{secret}"));
        if (secret is null || context.Request.Headers.Authorization != expected)
        {
            return (null, Results.Json(new { message = "Requires authentication" }, statusCode: 401));
        }

        using var body = await System.Text.Json.JsonDocument.ParseAsync(context.Request.Body);
        var token = body.RootElement.TryGetProperty("access_token", out var value) ? value.GetString() : null;
        return token is null ? (null, Results.Json(new { message = "Invalid request." }, statusCode: 422)) : (token, null);
    }

    private async Task<IResult> GetUserAsync(HttpContext context)
    {
        if (Interlocked.Increment(ref userCalls) <= UserFailuresBeforeSuccess)
        {
            return Results.Content("<html>Unicorn!</html>", "text/html", statusCode: 502);
        }

        switch (UserFault)
        {
            case UserFault.ServerError:
                return Results.Content("{\"message\":\"Server Error\"}", "application/json", statusCode: 500);
            case UserFault.MalformedJson:
                return Results.Content("<html>not json</html>", "application/json");
            case UserFault.Unauthorized:
                return Results.Json(new { message = "Bad credentials" }, statusCode: 401);
            case UserFault.RateLimited:
                context.Response.Headers["x-ratelimit-remaining"] = "0";
                context.Response.Headers["x-ratelimit-reset"] = DateTimeOffset.UtcNow.AddMinutes(30).ToUnixTimeSeconds().ToString();
                return Results.Json(new { message = "API rate limit exceeded" }, statusCode: 403);
            case UserFault.TooManyRequests:
                context.Response.Headers.RetryAfter = "60";
                return Results.Json(new { message = "You have exceeded a secondary rate limit." }, statusCode: 429);
            default:
                break;
        }

        await Task.CompletedTask;
        if (Authenticate(context.Request, out var token) is { } refusal)
        {
            return refusal;
        }

        var user = token!.User;
        return Results.Json(new Dictionary<string, object?>
        {
            ["id"] = user.Id,
            ["login"] = user.Login,
            ["name"] = user.Name,
            ["email"] = user.PublicEmail,
            ["avatar_url"] = user.AvatarUrl,
            ["type"] = "User",
        });
    }

    /// <summary>
    /// The app's installation page, with the user choosing an account and installing at once. GitHub then sends the
    /// browser to the app's callback URL with <c>installation_id</c> (absent for a <c>request</c>, which awaits an owner),
    /// <c>setup_action</c>, the <c>state</c> it was given, and a <c>code</c> (issued without PKCE) when the app requests
    /// user authorization during installation; otherwise to its setup URL without a code.
    /// </summary>
    private IResult Install(string slug, HttpRequest request)
    {
        if (slug != AppSlug || AppCallbackUrl is null)
        {
            return Results.NotFound();
        }

        var parameters = new Dictionary<string, string?> { ["setup_action"] = InstallSetupAction, ["state"] = request.Query["state"].ToString() };
        if (InstallSetupAction != "request")
        {
            var id = NextInstallationId;
            installations.AddOrUpdate(id, _ => (InstallationAccount, [User.Id]), (_, existing) => (existing.Account, [.. existing.Users, User.Id]));
            parameters["installation_id"] = id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (InstallRequestsUserAuthorization)
        {
            var code = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));
            codes[code] = new IssuedCode(AppClientId, AppCallbackUrl, null, null, "", User, DateTimeOffset.UtcNow.AddMinutes(10));
            parameters["code"] = code;
        }

        return Results.Redirect(QueryHelpers.AddQueryString(AppCallbackUrl, parameters));
    }

    /// <summary>GET /user/installations: the app's installations the user's token reaches; only a GitHub App's user token may ask.</summary>
    private IResult ListInstallations(HttpRequest request)
    {
        if (Authenticate(request, out var token) is { } refusal)
        {
            return refusal;
        }

        if (token!.ClientId != AppClientId)
        {
            return Results.Json(new { message = "You must authenticate with an access token authorized to a GitHub App in order to list installations" }, statusCode: 403);
        }

        var reachable = installations.Where(pair => pair.Value.Users.Contains(token.User.Id))
            .Select(pair => new { id = pair.Key, account = new { login = pair.Value.Account, type = "Organization" }, app_slug = AppSlug, target_type = "Organization" })
            .ToList();
        return Results.Json(new { total_count = reachable.Count, installations = reachable });
    }

    private IResult GetEmails(HttpRequest request)
    {
        if (Authenticate(request, out var token) is { } refusal)
        {
            return refusal;
        }

        // A GitHub App reads the list with its "Email addresses" permission; an OAuth App with user:email or user.
        if (token!.ClientId == AppClientId)
        {
            if (!AppEmailPermission)
            {
                return Results.Json(new { message = "Resource not accessible by integration" }, statusCode: 403);
            }
        }
        else if (token.Scope.Split(' ', ',') is var scopes && !scopes.Contains("user:email") && !scopes.Contains("user"))
        {
            return Results.Json(new { message = "Not Found" }, statusCode: 404);
        }

        return Results.Json(new object[]
        {
            new { email = "old@example.com", primary = false, verified = true, visibility = (string?)null },
            new { email = token.User.PrimaryEmail, primary = true, verified = true, visibility = "private" },
        });
    }

    private IResult? Authenticate(HttpRequest request, out IssuedToken? token)
    {
        token = null;
        if (string.IsNullOrEmpty(request.Headers.UserAgent))
        {
            return Results.Json(new { message = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header." }, statusCode: 403);
        }

        var header = request.Headers.Authorization.ToString();
        var value = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..]
            : header.StartsWith("token ", StringComparison.OrdinalIgnoreCase) ? header[6..] : null;
        return value is not null && tokens.TryGetValue(value, out token) ? null : Results.Json(new { message = "Bad credentials" }, statusCode: 401);
    }

    private static IResult Answer(string accept, Dictionary<string, object?> fields) =>
        accept.Contains("application/json", StringComparison.OrdinalIgnoreCase)
            ? Results.Json(fields)
            : Results.Content(string.Join('&', fields.Select(pair => $"{pair.Key}={WebUtility.UrlEncode(Convert.ToString(pair.Value, System.Globalization.CultureInfo.InvariantCulture))}")), "application/x-www-form-urlencoded");

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string RandomAlphanumeric(int length) =>
        RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", length);

    private sealed record IssuedCode(string ClientId, string RedirectUri, string? CodeChallenge, string? CodeChallengeMethod, string Scope, FakeGitHubUser User, DateTimeOffset ExpiresAt);

    private sealed record IssuedToken(string ClientId, FakeGitHubUser User, string Scope, string? RefreshToken);
}
