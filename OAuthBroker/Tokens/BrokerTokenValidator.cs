using System.Security.Claims;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;

namespace OAuthBroker.Tokens;

/// <summary>Checks a JWT that claims to be ours: our key (by kid), our issuer, a known instance, in its lifetime.</summary>
public sealed class BrokerTokenValidator(SigningKeyStore keys, AllowlistProvider allowlist, IOptions<BrokerOptions> options, TimeProvider time)
{
    public const int MaxTokenBytes = 16 * 1024;
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    /// <summary>How long after its expiry an ID token still names its client as an id_token_hint at logout.</summary>
    public static readonly TimeSpan HintGrace = TimeSpan.FromDays(30);

    private readonly JsonWebTokenHandler handler = new() { MaximumTokenSizeInBytes = MaxTokenBytes };

    /// <summary>A broker JWT an instance holds (from a login or a refresh): its audience is the instance.</summary>
    public async Task<TokenValidationResult> ValidateAsync(string token)
    {
        var result = await ValidateAsync(token, Parameters);
        // An ID token is addressed to the instance too, and typed JWT: it proves a sign-in to its client, and is no
        // broker JWT to call the broker's API with. Every one of ours carries at_hash; no broker JWT does.
        return result.IsValid && result.Claims.ContainsKey(JwtRegisteredClaimNames.AtHash)
            ? new TokenValidationResult { IsValid = false, Exception = new SecurityTokenInvalidTypeException("an ID token is not a broker JWT") }
            : result;
    }

    /// <summary>
    /// An access token the OpenID Connect face issued for /oauth/userinfo (RFC 9068): typed <c>at+jwt</c> and addressed
    /// to the broker itself, so that neither an instance's JWT nor an ID token passes for one, nor one for them.
    /// </summary>
    public Task<TokenValidationResult> ValidateAccessTokenAsync(string token) => ValidateAsync(token, () =>
    {
        var parameters = Parameters();
        parameters.ValidAudiences = [options.Value.Issuer];
        parameters.ValidTypes = ["at+jwt"];
        return parameters;
    });

    /// <summary>
    /// An ID token the broker issued, given back as <c>id_token_hint</c> at logout: ours by signature and issuer, for a
    /// known client, and an ID token (it carries at_hash); it may have expired (OpenID Connect RP-Initiated Logout 1.0).
    /// </summary>
    public async Task<TokenValidationResult> ValidateIdTokenHintAsync(string token)
    {
        var result = await ValidateAsync(token, () =>
        {
            var parameters = Parameters();
            // The specification lets an expired ID token name the client at logout: one that expired within the
            // past 30 days is taken, as the hint of a session that may have outlived it.
            parameters.LifetimeValidator = (notBefore, expires, _, _) =>
            {
                var now = time.GetUtcNow().UtcDateTime;
                return expires is { } exp && now < exp.Add(HintGrace) && (notBefore is not { } nbf || now >= nbf.Subtract(ClockSkew));
            };
            return parameters;
        });
        return result.IsValid && !result.Claims.ContainsKey(JwtRegisteredClaimNames.AtHash)
            ? new TokenValidationResult { IsValid = false, Exception = new SecurityTokenInvalidTypeException("not an ID token") }
            : result;
    }

    private async Task<TokenValidationResult> ValidateAsync(string token, Func<TokenValidationParameters> parametersFor)
    {
        var shapeError = token.Length > MaxTokenBytes ? "longer than the size bound" : CompactJwsShape.Check(token);
        if (shapeError is not null)
        {
            return new TokenValidationResult { IsValid = false, Exception = new SecurityTokenMalformedException(shapeError) };
        }

        var result = await handler.ValidateTokenAsync(token, parametersFor());
        // A kid this replica does not hold may be a key another one has just rotated in: the keys are reloaded (at most
        // once per interval) and the token checked once more. Only this failure reads the header a second time.
        if (result.Exception is SecurityTokenSignatureKeyNotFoundException && KeyIdOf(token) is { Length: > 0 and <= 128 } keyId
            && await keys.KnowsAfterReloadAsync(keyId, CancellationToken.None))
        {
            result = await handler.ValidateTokenAsync(token, parametersFor());
        }

        // The kill-switch takes effect at once for tokens already handed out, not only for new logins.
        // An access token names its instance in client_id; the instance's own JWT in aud.
        if (result.IsValid && (Claim(result.ClaimsIdentity, "client_id") ?? Claim(result.ClaimsIdentity, "aud")) is { } audience
            && allowlist.Current.Instances.TryGetValue(audience, out var instance) && instance.Disabled)
        {
            return new TokenValidationResult { IsValid = false, Exception = new InstanceDisabledException(audience) };
        }

        return result;
    }

    // Built per check: the signing keys are the store's at that moment, which a reload replaces.
    private TokenValidationParameters Parameters() => new()
    {
        ValidIssuer = options.Value.Issuer,
        ValidAudiences = allowlist.Current.Instances.Keys,
        IssuerSigningKeys = keys.Keys.Select(key => key.SecurityKey),
        // Pinned: no "none", no HMAC keyed with a public key (algorithm confusion).
        ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256],
        ValidTypes = ["JWT"],
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        RequireAudience = true,
        // A token whose kid we do not hold fails; it is never tried against every key.
        TryAllIssuerSigningKeys = false,
        ClockSkew = ClockSkew,
        LifetimeValidator = ValidateLifetime,
    };

    /// <summary>The header's kid; null for a header that does not parse.</summary>
    private string? KeyIdOf(string token)
    {
        try
        {
            return handler.ReadJsonWebToken(token).Kid;
        }
        catch (Exception exception) when (exception is ArgumentException or SecurityTokenMalformedException)
        {
            return null;
        }
    }

    private bool ValidateLifetime(DateTime? notBefore, DateTime? expires, SecurityToken token, TokenValidationParameters parameters)
    {
        var now = time.GetUtcNow().UtcDateTime;
        return expires is { } exp && now < exp.Add(ClockSkew) && (notBefore is not { } nbf || now >= nbf.Subtract(ClockSkew));
    }

    public static string? Claim(ClaimsIdentity identity, string type) => identity.FindFirst(type)?.Value;
}

/// <summary>A valid token of an instance the admin has disabled (<c>"disabled": true</c>).</summary>
public sealed class InstanceDisabledException : SecurityTokenValidationException
{
    public InstanceDisabledException()
    {
    }

    public InstanceDisabledException(string instanceId)
        : base($"The instance '{instanceId}' is disabled.")
    {
    }

    public InstanceDisabledException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
