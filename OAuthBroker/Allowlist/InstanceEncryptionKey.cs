using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.Json;
using Jose;
using OAuthBroker.Web;

namespace OAuthBroker.Allowlist;

/// <summary>An instance's public (or shared) key that the broker encrypts the GitHub token to, with its JWE algorithm.</summary>
public sealed class InstanceEncryptionKey
{
    private static readonly string[] PrivateRsaMembers = ["d", "p", "q", "dp", "dq", "qi"];
    private static readonly FrozenSet<string> EncryptingOperations = new[] { "encrypt", "wrapKey", "deriveKey", "deriveBits" }.ToFrozenSet(StringComparer.Ordinal);

    private InstanceEncryptionKey(Jwk jwk, string algorithm, string? keyId)
    {
        Jwk = jwk;
        Algorithm = algorithm;
        KeyId = keyId;
    }

    /// <summary>The key as jose-jwt uses it.</summary>
    public Jwk Jwk { get; }

    /// <summary>JWE <c>alg</c>: RSA-OAEP-256, RSA-OAEP, ECDH-ES+A256KW, A256KW or dir.</summary>
    public string Algorithm { get; }

    public string? KeyId { get; }

    public static bool TryParse(JsonElement element, [NotNullWhen(true)] out InstanceEncryptionKey? key, [NotNullWhen(false)] out string? error)
    {
        key = null;
        if (element.ValueKind != JsonValueKind.Object)
        {
            error = "must be a JSON Web Key object";
            return false;
        }

        var kty = Member(element, "kty");
        var alg = Member(element, "alg");
        var kid = Member(element, "kid");
        var use = Member(element, "use");
        if (use is not null && use != "enc")
        {
            error = $"has \"use\": \"{use}\"; an encryption key must have \"use\": \"enc\" or none";
            return false;
        }

        // RFC 7517 §4.3: a key whose key_ops leave out every encrypting operation was not meant for this.
        if (element.TryGetProperty("key_ops", out var operations)
            && (operations.ValueKind != JsonValueKind.Array || !operations.EnumerateArray().Any(operation => operation.ValueKind == JsonValueKind.String && EncryptingOperations.Contains(operation.GetString()!))))
        {
            error = "has \"key_ops\" without any of encrypt, wrapKey, deriveKey or deriveBits; an encryption key needs one of them, or no key_ops";
            return false;
        }

        if (kid is not null && (kid.Length > 128 || !kid.All(c => c is >= ' ' and <= '~')))
        {
            error = "has a \"kid\" longer than 128 characters or with non-printable characters";
            return false;
        }

        try
        {
            var jwk = Jwk.FromJson(element.GetRawText(), SourceGeneratedJoseMapper.Settings.JsonMapper);
            error = kty switch
            {
                "RSA" => CheckRsa(element, jwk, ref alg),
                "EC" => CheckEc(element, jwk, ref alg),
                "oct" => CheckOct(jwk, ref alg),
                _ => "must have \"kty\" RSA, EC or oct",
            };
            if (error is not null)
            {
                return false;
            }

            key = new InstanceEncryptionKey(jwk, alg!, kid);
            return true;
        }
        catch (Exception exception) when (exception is CryptographicException or FormatException or ArgumentException or InvalidOperationException or JoseException or KeyNotFoundException or InvalidCastException)
        {
            // The exception text may quote key material: report the kind of failure only.
            error = $"is not a usable {kty} key ({exception.GetType().Name})";
            return false;
        }
    }

    public static InstanceEncryptionKey FromRsaPublicKey(RSA rsa, string algorithm = "RSA-OAEP-256", string? keyId = null) =>
        new(new Jwk(rsa, isPrivate: false), algorithm, keyId);

    private static string? CheckRsa(JsonElement element, Jwk jwk, ref string? alg)
    {
        if (PrivateRsaMembers.Any(name => element.TryGetProperty(name, out _)))
        {
            return "is an RSA private key; give the instance's public key only";
        }

        alg ??= "RSA-OAEP-256";
        if (alg is not ("RSA-OAEP-256" or "RSA-OAEP"))
        {
            return "must have \"alg\" RSA-OAEP-256 or RSA-OAEP for an RSA key";
        }

        // The Jwk caches and owns this key object: disposing it here would break every later encryption.
        var rsa = jwk.RsaKey();
        return rsa.KeySize is < 2048 or > 8192 ? $"is a {rsa.KeySize}-bit RSA key; use 2048 to 8192 bits" : null;
    }

    private static string? CheckEc(JsonElement element, Jwk jwk, ref string? alg)
    {
        if (element.TryGetProperty("d", out _))
        {
            return "is an EC private key; give the instance's public key only";
        }

        if (jwk.Crv != "P-256")
        {
            return "must be on curve P-256";
        }

        alg ??= "ECDH-ES+A256KW";
        if (alg != "ECDH-ES+A256KW")
        {
            return "must have \"alg\" ECDH-ES+A256KW for an EC key";
        }

        // Importing checks that the point lies on the curve (an off-curve point leaks the private key in ECDH).
        using var ecdh = ECDiffieHellman.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = Base64Url.Decode(jwk.X), Y = Base64Url.Decode(jwk.Y) },
        });
        return null;
    }

    private static string? CheckOct(Jwk jwk, ref string? alg)
    {
        alg ??= "A256KW";
        if (alg is not ("A256KW" or "dir"))
        {
            return "must have \"alg\" A256KW or dir for an oct key";
        }

        var length = jwk.OctKey().Length;
        return length == 32 ? null : $"is a {length * 8}-bit secret; an oct key must be exactly 256 bits";
    }

    private static string? Member(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
