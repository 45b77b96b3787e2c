using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Features;
using OAuthBroker.Allowlist;
using OAuthBroker.Audit;
using OAuthBroker.Storage;
using OAuthBroker.Web;

namespace OAuthBroker.Lifecycle;

/// <summary>The token endpoint (RFC 6749 section 3.2): the refresh relay, for instances that authenticate as themselves.</summary>
public static partial class LifecycleEndpoints
{
    public const int MaxBodyBytes = 16 * 1024;

    public static IServiceCollection AddLifecycle(this IServiceCollection services)
    {
        services.AddStore<IRefreshTokenRepository, SqliteRefreshTokenRepository, PostgresRefreshTokenRepository>();
        services.AddStore<IClientAssertionRepository, SqliteClientAssertionRepository, PostgresClientAssertionRepository>();
        services.AddStore<IAccessTokenRepository, SqliteAccessTokenRepository, PostgresAccessTokenRepository>();
        services.AddSingleton<RefreshRelay>();
        services.AddSingleton<ClientAuthenticator>();
        services.AddSingleton<IPurgeable>(provider => provider.GetRequiredService<RefreshRelay>());
        services.AddSingleton<IPurgeable>(provider => provider.GetRequiredService<ClientAuthenticator>());
        return services;
    }

    public static IEndpointRouteBuilder MapLifecycle(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/oauth/token", TokenAsync).WithTags("Token lifecycle").DisableAntiforgery();
        endpoints.MapPost("/oauth/revoke", RevokeAsync).WithTags("Token lifecycle").DisableAntiforgery();
        return endpoints;
    }

    /// <summary>
    /// POST /oauth/token with grant_type=refresh_token (GitHub's refresh token from a broker JWT, or the sealed one of an
    /// OpenID Connect token response) or authorization_code. Errors are RFC 6749 section 5.2 JSON (what OAuth clients
    /// parse), never problem details; every answer is <c>Cache-Control: no-store</c>.
    /// </summary>
    public static async Task<IResult> TokenAsync(
        HttpContext context, AllowlistProvider allowlist, ClientAuthenticator clients, RefreshRelay relay, Oidc.OidcFlow oidc, AuditLog audit, ILogger<RefreshRelay> logger, CancellationToken cancellationToken)
    {
        var (form, instance, refusal) = await AuthenticateAsync(context, allowlist, clients, audit, logger, cancellationToken, publicClientsMay: true);
        if (refusal is not null)
        {
            return refusal;
        }

        var clientIp = ClientAddress.Of(context);
        if (form["grant_type"].Count != 1 || form["refresh_token"].Count > 1)
        {
            return await FinishAsync(context, audit, instance, clientIp, RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_request", "grant_type is required once; no parameter may repeat."), cancellationToken);
        }

        if (form["grant_type"] == "authorization_code")
        {
            return await FinishAsync(context, audit, instance, clientIp, instance.Disabled
                ? RefreshRelay.Error(StatusCodes.Status400BadRequest, "unauthorized_client", "This instance has been disabled by the broker's administrator.")
                : await oidc.RedeemAsync(instance, form, cancellationToken), cancellationToken);
        }

        if (form["grant_type"] != "refresh_token")
        {
            return await FinishAsync(context, audit, instance, clientIp, RefreshRelay.Error(StatusCodes.Status400BadRequest, "unsupported_grant_type", "The token endpoint supports grant_type=authorization_code and refresh_token."), cancellationToken);
        }

        if (instance.Disabled || !instance.Refresh)
        {
            return await FinishAsync(context, audit, instance, clientIp, RefreshRelay.Error(StatusCodes.Status400BadRequest, "unauthorized_client", instance.Disabled
                ? "This instance has been disabled by the broker's administrator."
                : "This instance's allowlist entry does not allow refresh (\"refresh\": true)."), cancellationToken);
        }

        var refreshToken = form["refresh_token"].ToString();
        if (refreshToken.StartsWith(Oidc.OidcFlow.RefreshTokenPrefix, StringComparison.Ordinal))
        {
            return await FinishAsync(context, audit, instance, clientIp, await oidc.RefreshAsync(instance, refreshToken, cancellationToken), cancellationToken);
        }

        if (!GitHub.GitHubClient.IsUsableToken(refreshToken))
        {
            return await FinishAsync(context, audit, instance, clientIp, RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_request", "refresh_token is missing or malformed."), cancellationToken);
        }

        return await FinishAsync(context, audit, instance, clientIp, await relay.RefreshAsync(instance, refreshToken, answerFor: null, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// POST /oauth/revoke (RFC 7009) with <c>token</c>, a GitHub access token the instance was given: revoked at GitHub
    /// when the broker handed it to this instance. A whole grant (every instance of a user) is not an instance's call.
    /// </summary>
    public static async Task<IResult> RevokeAsync(
        HttpContext context, AllowlistProvider allowlist, ClientAuthenticator clients, RefreshRelay relay, AuditLog audit, ILogger<RefreshRelay> logger, CancellationToken cancellationToken)
    {
        var (form, instance, refusal) = await AuthenticateAsync(context, allowlist, clients, audit, logger, cancellationToken);
        if (refusal is not null)
        {
            return refusal;
        }

        var clientIp = ClientAddress.Of(context);
        var token = form["token"].ToString();
        if (form["token"].Count != 1 || !GitHub.GitHubClient.IsUsableToken(token))
        {
            return await FinishAsync(context, audit, instance, clientIp, RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_request", "token is required once, as the GitHub access token to revoke."), cancellationToken);
        }

        if (form["token_type_hint"].Count > 0 && form["token_type_hint"] != "access_token")
        {
            return await FinishAsync(context, audit, instance, clientIp, RefreshRelay.Error(StatusCodes.Status400BadRequest, "unsupported_token_type", "Only GitHub access tokens are revoked here; a refresh token dies with its access token."), cancellationToken);
        }

        return await FinishAsync(context, audit, instance, clientIp, await relay.RevokeAsync(instance, token, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// What both endpoints do first: no-store on every answer, the bounded form, and the client's authentication.
    /// Either the form and the authenticated instance, or the refusal to send.
    /// </summary>
    private static async Task<(IFormCollection Form, AllowlistInstance Instance, IResult? Refusal)> AuthenticateAsync(
        HttpContext context, AllowlistProvider allowlist, ClientAuthenticator clients, AuditLog audit, ILogger logger, CancellationToken cancellationToken, bool publicClientsMay = false)
    {
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers.Pragma = "no-cache";
        var (form, refused) = await ReadFormAsync(context, cancellationToken);
        if (refused is not null)
        {
            return (null!, null!, Answer(context, refused));
        }

        var client = await clients.AuthenticateAsync(context.Request, form!, allowlist.Current, cancellationToken);
        // A public client (RFC 6749 section 2.1) redeems a code with its client_id alone; PKCE, required at its
        // authorization request, proves it is the client that started the flow. It has nothing else to ask for.
        if (client.Instance is null && client.Failure == ClientAuthenticator.NoAuthentication && publicClientsMay
            && form!["grant_type"] == "authorization_code" && form["client_id"].Count == 1
            && allowlist.Current.Instances.TryGetValue(form["client_id"].ToString(), out var publicClient) && publicClient.Public)
        {
            return (form, publicClient, null);
        }

        return client.Instance is { } instance
            ? (form!, instance, null)
            : (null!, null!, await RefuseClientAsync(context, audit, logger, client, cancellationToken));
    }

    private static async Task<(IFormCollection? Form, RelayAnswer? Refused)> ReadFormAsync(HttpContext context, CancellationToken cancellationToken)
    {
        if (!context.Request.HasFormContentType)
        {
            return (null, RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_request", "Send the request as application/x-www-form-urlencoded."));
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBodyBytes;
        }

        try
        {
            return (await context.Request.ReadFormAsync(new FormOptions { ValueCountLimit = 16, ValueLengthLimit = MaxBodyBytes, KeyLengthLimit = 64 }, cancellationToken), null);
        }
        catch (Exception exception) when (exception is InvalidDataException or BadHttpRequestException)
        {
            return (null, RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_request", $"The form is malformed or larger than {MaxBodyBytes} bytes."));
        }
    }

    private static async Task<IResult> RefuseClientAsync(HttpContext context, AuditLog audit, ILogger logger, ClientAuthenticationResult client, CancellationToken cancellationToken)
    {
        Log.ClientRefused(logger, client.Failure!);
        await audit.RecordRefusalAsync(null, "token endpoint: " + client.Failure, context.Connection.RemoteIpAddress, cancellationToken);
        if (client.UsedBasic)
        {
            context.Response.Headers.WWWAuthenticate = "Basic realm=\"oauthbroker\"";
        }

        return Answer(context, RefreshRelay.Error(StatusCodes.Status401Unauthorized, "invalid_client", "Client authentication failed."));
    }

    private static async Task<IResult> FinishAsync(HttpContext context, AuditLog audit, AllowlistInstance instance, string? clientIp, RelayAnswer answer, CancellationToken cancellationToken)
    {
        await audit.RecordTokenRequestAsync(instance.Id, answer.GitHubLogin, answer.Outcome, answer.Status == StatusCodes.Status200OK ? null : answer.Reason, clientIp, cancellationToken);
        return Answer(context, answer);
    }

    private static Microsoft.AspNetCore.Http.HttpResults.ContentHttpResult Answer(HttpContext context, RelayAnswer answer)
    {
        if (answer.RetryAfter is { } retryAfter)
        {
            RateLimits.SetRetryAfter(context.Response, retryAfter);
        }

        return TypedResults.Content(answer.Body, "application/json", statusCode: answer.Status);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 11001, Level = LogLevel.Warning, Message = "Refused a client at the token endpoint: {Reason}")]
        public static partial void ClientRefused(ILogger logger, string reason);
    }
}

/// <summary>A refresh's answer: the new JWT, of the login's shape, and the user's login (as the redirect's <c>user</c>).</summary>
public sealed record RefreshResponse([property: JsonPropertyName("token")] string Token, [property: JsonPropertyName("user")] string User);

/// <summary>RFC 6749 section 5.2.</summary>
public sealed record OAuthError([property: JsonPropertyName("error")] string Error, [property: JsonPropertyName("error_description")] string Description);

[JsonSerializable(typeof(RefreshResponse))]
[JsonSerializable(typeof(OAuthError))]
internal sealed partial class LifecycleJsonContext : JsonSerializerContext;
