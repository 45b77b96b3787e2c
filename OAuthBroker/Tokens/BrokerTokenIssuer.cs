using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Users;

namespace OAuthBroker.Tokens;

/// <summary>Issues the JWT an instance receives: signed by the broker, addressed to one instance (<c>aud</c>).</summary>
public sealed class BrokerTokenIssuer(SigningKeyStore keys, IOptions<BrokerOptions> options, TimeProvider time)
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    /// <summary>
    /// Claim names follow the Trackeep integration guide so existing instances keep working. The lifetime depends on
    /// how the token travels (<see cref="BrokerOptions.TokenLifetimeFor"/>).
    /// </summary>
    /// <param name="extraClaims">Claims of a particular flow (the install relay's <c>installation_id</c>…), added as they are.</param>
    public string Issue(AllowlistInstance instance, BrokerUser user, GitHubToken token, string responseMode, IReadOnlyDictionary<string, object>? extraClaims = null)
    {
        var now = time.GetUtcNow();
        var claims = new Dictionary<string, object>
        {
            [JwtRegisteredClaimNames.Sub] = user.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [JwtRegisteredClaimNames.Jti] = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
            ["user_id"] = user.Id,
            ["github_id"] = user.GitHubId,
            ["username"] = user.Login,
            ["token_type"] = "bearer",
            ["scope"] = token.Scope,
            // Which of the broker's GitHub integrations issued the token: an OAuth App's and a GitHub App's tokens
            // differ in reach (scopes or the app's permissions and installations) and in lifetime.
            ["provider"] = instance.Provider,
        };
        AddIfPresent(claims, "email", user.Email);
        AddIfPresent(claims, "name", user.Name);
        AddIfPresent(claims, "avatar_url", user.AvatarUrl);
        if (instance.EncryptionKey is { } key)
        {
            claims["access_token"] = InstanceTokenEncryptor.Encrypt(token.AccessToken, key);
            if (token.ExpiresAt is { } expiresAt)
            {
                claims["expires_at"] = expiresAt.ToUnixTimeSeconds();
            }

            // Refreshing needs the broker's client secret, so the token is only of use through the broker's relay.
            if (instance.Refresh && token.RefreshToken is { } refreshToken)
            {
                claims["refresh_token"] = InstanceTokenEncryptor.Encrypt(refreshToken, key);
                if (token.RefreshTokenExpiresAt is { } refreshExpiresAt)
                {
                    claims["refresh_token_expires_at"] = refreshExpiresAt.ToUnixTimeSeconds();
                }
            }
        }

        foreach (var (name, value) in extraClaims ?? new Dictionary<string, object>())
        {
            claims[name] = value;
        }

        var signingKey = keys.Active;
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = options.Value.Issuer,
            Audience = instance.Id,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = now.Add(options.Value.TokenLifetimeFor(responseMode)).UtcDateTime,
            TokenType = "JWT",
            Claims = claims,
            SigningCredentials = new SigningCredentials(signingKey.SecurityKey, signingKey.Algorithm),
        });
    }

    private static void AddIfPresent(Dictionary<string, object> claims, string name, string? value)
    {
        if (value is not null)
        {
            claims[name] = value;
        }
    }
}
