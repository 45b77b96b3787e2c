using Jose;
using OAuthBroker.Allowlist;
using OAuthBroker.Web;

namespace OAuthBroker.Tokens;

/// <summary>Encrypts a GitHub token to one instance's key as a compact JWE (RFC 7516) that only that instance can open.</summary>
public static class InstanceTokenEncryptor
{
    /// <summary>Content encryption for every key type: AES-GCM is what every JOSE library implements.</summary>
    public const string ContentEncryption = "A256GCM";

    public static string Encrypt(string gitHubAccessToken, InstanceEncryptionKey key)
    {
        var headers = key.KeyId is null ? null : new Dictionary<string, object> { ["kid"] = key.KeyId };
        return JWT.Encode(gitHubAccessToken, key.Jwk, key.Algorithm, ContentEncryption, extraHeaders: headers, settings: SourceGeneratedJoseMapper.Settings);
    }
}
