using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;

namespace OAuthBroker.Lifecycle;

/// <summary>Who the caller at the token endpoint proved to be, or why it did not (RFC 6749 section 2.3).</summary>
public readonly record struct ClientAuthenticationResult(AllowlistInstance? Instance, string? Failure, bool UsedBasic);

/// <summary>
/// OAuth client authentication of an instance at the token endpoint: <c>private_key_jwt</c> (RFC 7523 section 2.2: a
/// short-lived assertion signed with the instance's own key, its <c>jti</c> accepted once, its <c>aud</c> the broker's
/// issuer identifier and nothing else), <c>client_secret_basic</c> (RFC 6749 section 2.3.1, id and secret
/// form-URL-encoded inside the Basic credentials) or <c>client_secret_post</c>. An entry holds a secret's SHA-256 only,
/// compared in constant time; an unknown id costs the same hash and comparison as a wrong secret.
/// </summary>
public sealed class ClientAuthenticator(IClientAssertionRepository assertions, IOptions<BrokerOptions> broker, TimeProvider time) : IPurgeable
{
    public const int MaxClientIdLength = 64;
    public const int MaxSecretLength = 256;
    public const int MaxAssertionLength = 8 * 1024;
    public const string AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

    /// <summary>The longest an assertion may live, from its issue (or from now) to its expiry.</summary>
    public static readonly TimeSpan MaxAssertionLifetime = TimeSpan.FromMinutes(5);

    public static readonly string[] Methods = ["private_key_jwt", "client_secret_basic", "client_secret_post"];

    /// <summary>The failure of a request that carries no client credential at all.</summary>
    public const string NoAuthentication = "no client authentication";

    private static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);
    private static readonly byte[] NoSecret = new byte[SHA256.HashSizeInBytes];
    private readonly JsonWebTokenHandler handler = new() { MaximumTokenSizeInBytes = MaxAssertionLength };

    public string Name => "client_assertions";

    public async Task<ClientAuthenticationResult> AuthenticateAsync(HttpRequest request, IFormCollection form, AllowlistSnapshot allowlist, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(form);
        ArgumentNullException.ThrowIfNull(allowlist);
        var header = request.Headers.Authorization;
        var basic = header.Count == 1 && header[0]!.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase);
        var posted = form.ContainsKey("client_secret");
        var asserted = form.ContainsKey("client_assertion") || form.ContainsKey("client_assertion_type");
        if ((basic ? 1 : 0) + (posted ? 1 : 0) + (asserted ? 1 : 0) > 1)
        {
            return new(null, "more than one client authentication method was used", basic);
        }

        if (asserted)
        {
            return await VerifyAssertionAsync(form, allowlist, cancellationToken);
        }

        string? clientId;
        string? secret;
        if (basic)
        {
            if (!TryReadBasic(header[0]!, out clientId, out secret))
            {
                return new(null, "the Basic credentials are malformed", basic);
            }
        }
        else if (posted && form["client_id"].Count == 1 && form["client_secret"].Count == 1)
        {
            clientId = form["client_id"].ToString();
            secret = form["client_secret"].ToString();
        }
        else
        {
            return new(null, NoAuthentication, basic);
        }

        if (clientId is not { Length: > 0 and <= MaxClientIdLength } || secret is not { Length: > 0 and <= MaxSecretLength })
        {
            return new(null, "the client id or secret is empty or too long", basic);
        }

        allowlist.Instances.TryGetValue(clientId, out var instance);
        var expected = instance?.ClientSecretHash ?? NoSecret;
        var matches = CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), expected);
        return instance?.ClientSecretHash is not null && matches
            ? new(instance, null, basic)
            : new(null, instance is null ? "unknown client id" : "wrong client secret", basic);
    }

    /// <summary>Deletes the jti of assertions that have expired: a replay of one is refused for its expiry anyway.</summary>
    public Task<int> PurgeAsync(CancellationToken cancellationToken) =>
        assertions.DeleteExpiredAsync(time.GetUtcNow().Subtract(ClockSkew).ToUnixTimeMilliseconds(), cancellationToken);

    private async Task<ClientAuthenticationResult> VerifyAssertionAsync(IFormCollection form, AllowlistSnapshot allowlist, CancellationToken cancellationToken)
    {
        if (form["client_assertion_type"].Count != 1 || form["client_assertion_type"] != AssertionType || form["client_assertion"].Count != 1)
        {
            return Refused($"client_assertion_type must be {AssertionType}, with one client_assertion");
        }

        var assertion = form["client_assertion"].ToString();
        // The algorithms a client key may sign with (PS256 too, which the metadata advertises), not only the broker's own.
        if (assertion.Length > MaxAssertionLength)
        {
            return Refused("the client assertion is longer than the size bound");
        }

        if (CompactJwsShape.Check(assertion, ClientKey.Algorithms) is { } shapeError)
        {
            return Refused($"the client assertion is not an accepted compact JWS: {shapeError}");
        }

        string clientId;
        try
        {
            clientId = handler.ReadJsonWebToken(assertion).Issuer;
        }
        catch (Exception exception) when (exception is ArgumentException or SecurityTokenMalformedException)
        {
            return Refused("the client assertion does not parse");
        }

        if (form["client_id"].Count > 1 || (form["client_id"].Count == 1 && form["client_id"] != clientId))
        {
            return Refused("client_id does not match the assertion's issuer");
        }

        if (!allowlist.Instances.TryGetValue(clientId, out var instance) || instance.ClientKey is not { } key)
        {
            return Refused("the assertion's issuer is no instance with a clientKey");
        }

        var issuer = broker.Value.Issuer;
        var result = await handler.ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            ValidIssuer = clientId,
            ValidAudience = issuer,
            IssuerSigningKey = key,
            ValidAlgorithms = ClientKey.Algorithms,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            RequireAudience = true,
            // The entry's one key, whatever kid (if any) the assertion names.
            TryAllIssuerSigningKeys = true,
            ClockSkew = ClockSkew,
            LifetimeValidator = (notBefore, expires, _, _) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return expires is { } exp && now < exp.Add(ClockSkew) && (notBefore is not { } nbf || now >= nbf.Subtract(ClockSkew));
            },
        });
        if (!result.IsValid || result.SecurityToken is not JsonWebToken token)
        {
            // The exception type says why (signature, audience, lifetime) without repeating the assertion.
            return Refused($"the client assertion of '{clientId}' is invalid ({result.Exception?.GetType().Name ?? "unknown"})");
        }

        // RFC 7523 after the 2025 audience-injection findings: the issuer identifier as the only audience.
        if (token.Subject != clientId || token.Audiences.Count() != 1)
        {
            return Refused($"the client assertion of '{clientId}' needs sub = iss and the broker's issuer as its only audience");
        }

        var expires = new DateTimeOffset(token.ValidTo, TimeSpan.Zero);
        var now = time.GetUtcNow();
        var issued = token.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out _) ? new DateTimeOffset(token.IssuedAt, TimeSpan.Zero) : now;
        if (expires - issued > MaxAssertionLifetime || expires - now > MaxAssertionLifetime + ClockSkew)
        {
            return Refused($"the client assertion of '{clientId}' lives longer than {MaxAssertionLifetime.TotalMinutes:0} minutes");
        }

        if (!token.TryGetPayloadValue<string>(JwtRegisteredClaimNames.Jti, out var jti) || jti is not { Length: > 0 and <= 256 })
        {
            return Refused($"the client assertion of '{clientId}' has no jti");
        }

        var jtiHash = SHA256.HashData(Encoding.UTF8.GetBytes(clientId + "\n" + jti));
        if (!await assertions.TryRecordAsync(jtiHash, clientId, expires.Add(ClockSkew).ToUnixTimeMilliseconds(), cancellationToken))
        {
            return Refused($"the client assertion of '{clientId}' was used before (jti replayed)");
        }

        return new(instance, null, false);
    }

    private static ClientAuthenticationResult Refused(string reason) => new(null, reason, false);

    private static bool TryReadBasic(string header, out string? clientId, out string? secret)
    {
        clientId = secret = null;
        if (!AuthenticationHeaderValue.TryParse(header, out var value) || value.Parameter is not { Length: > 0 and <= 2048 } parameter)
        {
            return false;
        }

        string decoded;
        try
        {
            decoded = Encoding.UTF8.GetString(Convert.FromBase64String(parameter));
        }
        catch (FormatException)
        {
            return false;
        }

        var colon = decoded.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return false;
        }

        // RFC 6749 section 2.3.1: both are form-URL-encoded before they are joined.
        clientId = Uri.UnescapeDataString(decoded[..colon].Replace('+', ' '));
        secret = Uri.UnescapeDataString(decoded[(colon + 1)..].Replace('+', ' '));
        return true;
    }
}
