using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Serialization;
using System.Text.Json;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Timeout;
using OAuthBroker.Telemetry;

namespace OAuthBroker.GitHub;

/// <summary>
/// The broker's backchannel to GitHub: the code exchange and the user look-ups. Every expected failure comes back as a
/// <see cref="GitHubFailure"/> whose reason is safe to log; no token or secret is ever part of one.
/// </summary>
public sealed class GitHubClient(HttpClient http, TimeProvider time, BrokerMetrics metrics)
{
    public const int MaxResponseBytes = 1024 * 1024;
    private const int MaxTokenLength = 4096;

    /// <summary>POST /login/oauth/access_token with the PKCE verifier (RFC 7636 section 4.5).</summary>
    /// <remarks><paramref name="codeVerifier"/> is null only for a code GitHub issued during an app installation, which had no challenge.</remarks>
    public async Task<GitHubResult<GitHubToken>> ExchangeCodeAsync(GitHubIntegrationOptions settings, string code, string? codeVerifier, string redirectUri, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var form = new Dictionary<string, string>
        {
            ["client_id"] = settings.ClientId,
            ["client_secret"] = settings.ClientSecret,
            ["code"] = code,
            ["redirect_uri"] = redirectUri,
        };
        if (codeVerifier is not null)
        {
            form["code_verifier"] = codeVerifier;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, settings.TokenEndpoint)
        {
            Content = new FormUrlEncodedContent(form),
        };
        // Without this GitHub answers form-encoded.
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));

        var (document, failure) = await SendAsync(request, "token", "the code exchange", cancellationToken);
        return failure ?? ReadToken(document!, "the code exchange");
    }

    /// <summary>
    /// POST /login/oauth/access_token with grant_type=refresh_token: a new access token and a new refresh token; the
    /// one sent is spent. Never retried (a POST), since a second try would spend nothing but fail. A dead, reused or
    /// expired refresh token is <see cref="GitHubFailureKind.Rejected"/>, whether GitHub says so with HTTP 200 or 400.
    /// </summary>
    public async Task<GitHubResult<GitHubToken>> RefreshAsync(GitHubIntegrationOptions settings, string refreshToken, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        using var request = new HttpRequestMessage(HttpMethod.Post, settings.TokenEndpoint)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["client_id"] = settings.ClientId,
                ["client_secret"] = settings.ClientSecret,
                ["grant_type"] = "refresh_token",
                ["refresh_token"] = refreshToken,
            }),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        var (document, failure) = await SendAsync(request, "refresh", "the token refresh", cancellationToken, errorBodyOnBadRequest: true);
        return failure ?? ReadToken(document!, "the token refresh");
    }

    /// <summary>
    /// DELETE /applications/{client_id}/token with the app's Basic credentials: ends one token at GitHub. Null (no
    /// failure) when GitHub revoked it or no longer knows it (404: revoked already, or expired), which is what the
    /// caller wants.
    /// </summary>
    public Task<GitHubFailure?> RevokeAsync(GitHubIntegrationOptions settings, string accessToken, CancellationToken cancellationToken) =>
        DeleteAsync(settings, settings.TokenRevocationEndpoint, accessToken, "revoke", "the token revocation", cancellationToken);

    /// <summary>
    /// DELETE /applications/{client_id}/grant: ends the user's whole authorization of the app, every token of theirs
    /// it issued, given any one live token of theirs. 404 means none is left to end.
    /// </summary>
    public Task<GitHubFailure?> RevokeGrantAsync(GitHubIntegrationOptions settings, string accessToken, CancellationToken cancellationToken) =>
        DeleteAsync(settings, settings.GrantRevocationEndpoint, accessToken, "revoke_grant", "the grant revocation", cancellationToken);

    private async Task<GitHubFailure?> DeleteAsync(GitHubIntegrationOptions settings, string url, string accessToken, string endpoint, string what, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        using var request = new HttpRequestMessage(HttpMethod.Delete, url)
        {
            Content = JsonContent.Create(new Dictionary<string, string> { ["access_token"] = accessToken }, GitHubJsonContext.Default.DictionaryStringString),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{settings.ClientId}:{settings.ClientSecret}")));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.github+json"));
        request.Headers.Add("X-GitHub-Api-Version", "2022-11-28");
        // 204 revoked; 404 GitHub no longer knows the token, which is what the caller wants too. No body to read.
        var (_, failure) = await ExchangeAsync<JsonDocument>(request, endpoint, what, (response, _) =>
            Task.FromResult<(JsonDocument?, GitHubFailure?)>((null, response.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.NotFound ? null : StatusFailure(response, what))),
            cancellationToken);
        return failure;
    }

    private GitHubResult<GitHubToken> ReadToken(JsonDocument document, string what)
    {
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return new GitHubFailure(GitHubFailureKind.Malformed, $"{what} answered JSON that is not an object");
            }

            // GitHub reports bad_verification_code, incorrect_client_credentials, redirect_uri_mismatch,
            // bad_refresh_token ... with HTTP 200.
            if (root.TryGetProperty("error", out var error))
            {
                return new GitHubFailure(GitHubFailureKind.Rejected, $"GitHub refused {what}: {SafeCode(error)}") { Code = SafeCode(error) };
            }

            var accessToken = String(root, "access_token");
            if (!IsUsableToken(accessToken))
            {
                return new GitHubFailure(GitHubFailureKind.Malformed, $"{what} answered without a usable access_token");
            }

            var tokenType = String(root, "token_type") ?? "bearer";
            if (!tokenType.Equals("bearer", StringComparison.OrdinalIgnoreCase))
            {
                return new GitHubFailure(GitHubFailureKind.Malformed, $"{what} answered a token_type other than bearer");
            }

            var refreshToken = String(root, "refresh_token");
            if (refreshToken is not null && !IsUsableToken(refreshToken))
            {
                return new GitHubFailure(GitHubFailureKind.Malformed, $"{what} answered an unusable refresh_token");
            }

            var scope = string.Join(' ', Allowlist.Scopes.Split(String(root, "scope")).Where(Allowlist.Scopes.IsValid));
            return new GitHubToken(accessToken!, "bearer", scope, ExpiresAt(root, "expires_in"))
            {
                RefreshToken = refreshToken,
                RefreshTokenExpiresAt = refreshToken is null ? null : ExpiresAt(root, "refresh_token_expires_in"),
            };
        }
    }

    /// <summary>The shape of any GitHub token the broker takes, from GitHub or from an instance: 1 to 4096 printable ASCII characters.</summary>
    public static bool IsUsableToken(string? token) => token is { Length: > 0 and <= MaxTokenLength } && token.All(c => c is > ' ' and <= '~');

    private DateTimeOffset? ExpiresAt(JsonElement root, string name) =>
        root.TryGetProperty(name, out var seconds) && seconds.TryGetInt64(out var value) && value > 0 && value < 10L * 366 * 24 * 3600
            ? time.GetUtcNow().AddSeconds(value)
            : null;

    /// <summary>GET /user, and GET /user/emails for the primary verified address when the profile hides it.</summary>
    public async Task<GitHubResult<GitHubUser>> GetUserAsync(GitHubIntegrationOptions settings, GitHubToken token, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(token);
        using var request = ApiRequest(settings.UserEndpoint, token);
        var (document, failure) = await SendAsync(request, "user", "GET /user", cancellationToken);
        if (failure is not null)
        {
            return failure;
        }

        GitHubUser user;
        using (document)
        {
            var root = document!.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("id", out var id) || !id.TryGetInt64(out var gitHubId) || gitHubId <= 0
                || String(root, "login") is not { } login || !GitHubStrings.IsLogin(login))
            {
                return new GitHubFailure(GitHubFailureKind.Malformed, "GET /user answered without a numeric id and a well-formed login");
            }

            user = new GitHubUser(gitHubId, login, GitHubStrings.Text(String(root, "name")), GitHubStrings.Email(String(root, "email")), GitHubStrings.Url(String(root, "avatar_url")));
        }

        // An OAuth App's token reads the list with user:email (or user); a GitHub App's has no scopes, and reads it
        // when the app has the "Email addresses" permission, which only asking tells.
        var scopes = Allowlist.Scopes.Split(token.Scope);
        if (user.Email is null && (!settings.UsesScopes || scopes.Contains("user:email") || scopes.Contains("user")))
        {
            user = user with { Email = await GetPrimaryEmailAsync(settings, token, cancellationToken) };
        }

        return user;
    }

    /// <summary>
    /// The account of installation <paramref name="installationId"/> of this GitHub App when the user's token reaches
    /// it (<c>GET /user/installations</c>, the first 100); neither a value nor a failure when it does not: GitHub's own advice for a spoofable
    /// <c>installation_id</c> in a redirect.
    /// </summary>
    public async Task<GitHubResult<GitHubInstallation>> FindInstallationAsync(GitHubIntegrationOptions settings, GitHubToken token, long installationId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(token);
        using var request = ApiRequest(settings.ApiUrl.TrimEnd('/') + "/user/installations?per_page=100", token);
        var (document, failure) = await SendAsync(request, "user_installations", "GET /user/installations", cancellationToken);
        if (failure is not null)
        {
            return failure;
        }

        using (document)
        {
            if (document!.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("installations", out var installations) || installations.ValueKind != JsonValueKind.Array)
            {
                return new GitHubFailure(GitHubFailureKind.Malformed, "GET /user/installations answered without an installations list");
            }

            foreach (var entry in installations.EnumerateArray())
            {
                if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("id", out var id) && id.TryGetInt64(out var value) && value == installationId)
                {
                    var account = entry.TryGetProperty("account", out var owner) && owner.ValueKind == JsonValueKind.Object ? String(owner, "login") : null;
                    return new GitHubInstallation(installationId, account is not null && GitHubStrings.IsLogin(account) ? account : null);
                }
            }
        }

        return new GitHubResult<GitHubInstallation>(null, null);
    }

    // The address is a nicety: if the list cannot be read, the login goes on without it.
    private async Task<string?> GetPrimaryEmailAsync(GitHubIntegrationOptions settings, GitHubToken token, CancellationToken cancellationToken)
    {
        using var request = ApiRequest(settings.UserEmailsEndpoint, token);
        var (document, failure) = await SendAsync(request, "user_emails", "GET /user/emails", cancellationToken);
        if (failure is not null)
        {
            return null;
        }

        using (document)
        {
            if (document!.RootElement.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            foreach (var entry in document.RootElement.EnumerateArray())
            {
                if (entry.ValueKind == JsonValueKind.Object
                    && entry.TryGetProperty("primary", out var primary) && primary.ValueKind == JsonValueKind.True
                    && entry.TryGetProperty("verified", out var verified) && verified.ValueKind == JsonValueKind.True)
                {
                    return GitHubStrings.Email(String(entry, "email"));
                }
            }
        }

        return null;
    }

    private static HttpRequestMessage ApiRequest(string url, GitHubToken token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.AccessToken);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.github+json"));
        request.Headers.Add("X-GitHub-Api-Version", "2022-11-28");
        return request;
    }

    /// <summary>Sends one call and reads its JSON; its duration and outcome are measured under <paramref name="endpoint"/>.</summary>
    private Task<(JsonDocument? Document, GitHubFailure? Failure)> SendAsync(HttpRequestMessage request, string endpoint, string what, CancellationToken cancellationToken, bool errorBodyOnBadRequest = false) =>
        ExchangeAsync(request, endpoint, what, (response, token) => ReadJsonAsync(response, what, errorBodyOnBadRequest, token), cancellationToken);

    /// <summary>
    /// Sends one call and reads its answer with <paramref name="read"/>; a timeout or a transport error becomes an
    /// Unavailable failure. Its duration and outcome are measured under <paramref name="endpoint"/>: an error GitHub
    /// answers with HTTP 200 counts here as ok, and in the login's outcome.
    /// </summary>
    private async Task<(T? Value, GitHubFailure? Failure)> ExchangeAsync<T>(
        HttpRequestMessage request, string endpoint, string what, Func<HttpResponseMessage, CancellationToken, Task<(T?, GitHubFailure?)>> read, CancellationToken cancellationToken)
        where T : class
    {
        var started = time.GetTimestamp();
        (T? Value, GitHubFailure? Failure) result;
        // HTTP/2 where TLS offers it (github.com and api.github.com do): all concurrent logins share one connection per
        // host instead of one connection, and one TLS handshake, each. Plain http (a test double) stays on HTTP/1.1.
        request.Version = HttpVersion.Version20;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        try
        {
            using var response = await http.SendAsync(request, cancellationToken);
            result = await read(response, cancellationToken);
        }
        catch (Exception exception) when (exception is TaskCanceledException or TimeoutRejectedException && !cancellationToken.IsCancellationRequested)
        {
            result = (null, new GitHubFailure(GitHubFailureKind.Unavailable, $"{what} timed out (deadline {http.Timeout.TotalSeconds:0.###} s, retries included)"));
        }
        catch (HttpRequestException exception)
        {
            // The message names the host and the socket error, never the request body.
            result = (null, new GitHubFailure(GitHubFailureKind.Unavailable, $"{what} failed: {exception.HttpRequestError} ({exception.Message})"));
        }

        metrics.GitHubCalled(endpoint, result.Failure?.Kind.ToString().ToLowerInvariant() ?? "ok", time.GetElapsedTime(started));
        return result;
    }

    private static async Task<(JsonDocument?, GitHubFailure?)> ReadJsonAsync(HttpResponseMessage response, string what, bool errorBodyOnBadRequest, CancellationToken cancellationToken)
    {
        // The refresh's bad_refresh_token also comes with HTTP 400 and an OAuth error body: read like a 200's.
        if (!response.IsSuccessStatusCode && !(errorBodyOnBadRequest && response.StatusCode == HttpStatusCode.BadRequest))
        {
            return (null, StatusFailure(response, what));
        }

        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        try
        {
            return (JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 }), null);
        }
        catch (JsonException)
        {
            return (null, new GitHubFailure(GitHubFailureKind.Malformed, $"{what} answered a body that is not JSON"));
        }
    }

    private static GitHubFailure StatusFailure(HttpResponseMessage response, string what)
    {
        var status = (int)response.StatusCode;
        var rateLimited = response.StatusCode == HttpStatusCode.TooManyRequests
            || (response.StatusCode == HttpStatusCode.Forbidden
                && (response.Headers.RetryAfter is not null
                    || (response.Headers.TryGetValues("x-ratelimit-remaining", out var remaining) && remaining.FirstOrDefault() == "0")));
        if (rateLimited)
        {
            return new GitHubFailure(GitHubFailureKind.Unavailable, $"{what} was rate limited by GitHub (HTTP {status})");
        }

        return status >= 500
            ? new GitHubFailure(GitHubFailureKind.Unavailable, $"{what} answered HTTP {status}")
            : new GitHubFailure(status == 401 ? GitHubFailureKind.Rejected : GitHubFailureKind.Malformed, $"{what} answered HTTP {status}");
    }

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    // GitHub's error codes are lower-case words; anything else is not echoed into logs.
    private static string SafeCode(JsonElement error) =>
        error.ValueKind == JsonValueKind.String && error.GetString() is { Length: > 0 and <= 64 } code && code.All(c => char.IsAsciiLetterLower(c) || c == '_')
            ? code
            : "an unrecognised error";

}

public static class GitHubSetup
{
    public static IServiceCollection AddGitHub(this IServiceCollection services)
    {
        services.AddOptions<GitHubOptions>().BindConfiguration(GitHubOptions.Section).ValidateOnStart();
        services.AddOptions<GitHubAppOptions>().BindConfiguration(GitHubAppOptions.Section).ValidateOnStart();
        services.AddSingleton<GitHubOptionsValidator>();
        services.AddSingleton<IValidateOptions<GitHubOptions>>(provider => provider.GetRequiredService<GitHubOptionsValidator>());
        services.AddSingleton<IValidateOptions<GitHubAppOptions>>(provider => provider.GetRequiredService<GitHubOptionsValidator>());
        services.AddSingleton<GitHubIntegrations>();
        services.AddHttpClient<GitHubClient>((provider, client) =>
            {
                // The total deadline: what a user waits at most for one call, retries included.
                client.Timeout = provider.GetRequiredService<IOptions<GitHubOptions>>().Value.Timeout;
                client.MaxResponseContentBufferSize = GitHubClient.MaxResponseBytes;
                // GitHub's API refuses requests without a User-Agent.
                client.DefaultRequestHeaders.UserAgent.ParseAdd("OAuthBroker/1.0");
            })
            .UseSocketsHttpHandler((handler, _) =>
            {
                // Beyond the streams one HTTP/2 connection allows (GitHub's server sets the number), open another rather than queue.
                handler.EnableMultipleHttp2Connections = true;
                // GitHub is another party: the broker's trace ids (traceparent, baggage) stay here, even while it traces.
                handler.ActivityHeadersPropagator = DistributedContextPropagator.CreateNoOutputPropagator();
            })
            // The factory's request logging adds a scope and two log calls to every GitHub call; our own failure log says what matters.
            .RemoveAllLoggers()
            .AddResilienceHandler("github", (pipeline, context) =>
            {
                var timeout = context.ServiceProvider.GetRequiredService<IOptions<GitHubOptions>>().Value.Timeout;
                var retry = new HttpRetryStrategyOptions
                {
                    MaxRetryAttempts = 2,
                    Delay = TimeSpan.FromMilliseconds(100),
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    // Rate limits (403/429) are not retried: their reset is minutes away, and a user is waiting.
                    ShouldHandle = arguments => ValueTask.FromResult(arguments.Outcome switch
                    {
                        { Exception: HttpRequestException or TimeoutRejectedException } => true,
                        { Result: { } response } => (int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.RequestTimeout,
                        _ => false,
                    }),
                };
                // GET /user and /user/emails are idempotent; the code exchange is not: a code is good for one try.
                retry.DisableForUnsafeHttpMethods();
                pipeline.AddRetry(retry);
                pipeline.AddTimeout(timeout / 2);
            });
        return services;
    }
}

[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class GitHubJsonContext : JsonSerializerContext;
