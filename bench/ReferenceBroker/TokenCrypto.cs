using System.Security.Cryptography;
using System.Text.Json;
using Jose;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace ReferenceBroker;

/// <summary>
/// The crypto floor of a broker token: the GitHub token as a JWE (RSA-OAEP-256, A256GCM) to the instance's key, inside
/// a JWT signed with ES256. Its claims are a subset of the broker's (no user_id, scope or profile fields), so this floor
/// errs low. No key store, no user row: only the two operations.
/// </summary>
public sealed class TokenCrypto(string instanceKeyJson, string issuer)
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly Jwk instanceKey = Jwk.FromJson(instanceKeyJson, JWT.DefaultSettings.JsonMapper);
    private readonly SigningCredentials signing = new(new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "floor" }, SecurityAlgorithms.EcdsaSha256);

    public string Issue(string accessToken, JsonElement user)
    {
        var now = DateTime.UtcNow;
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = "bench-instance",
            IssuedAt = now,
            NotBefore = now,
            Expires = now.AddHours(1),
            TokenType = "JWT",
            Claims = new Dictionary<string, object>
            {
                [JwtRegisteredClaimNames.Sub] = "1",
                [JwtRegisteredClaimNames.Jti] = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
                ["github_id"] = user.GetProperty("id").GetInt64(),
                ["username"] = user.GetProperty("login").GetString()!,
                ["token_type"] = "bearer",
                ["access_token"] = JWT.Encode(accessToken, instanceKey, JweAlgorithm.RSA_OAEP_256, JweEncryption.A256GCM),
            },
            SigningCredentials = signing,
        });
    }
}
