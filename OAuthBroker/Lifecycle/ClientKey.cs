using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace OAuthBroker.Lifecycle;

/// <summary>
/// An instance's own signing key for <c>private_key_jwt</c> (<c>"clientKey"</c> in its entry): the public half only,
/// EC P-256 (ES256) or RSA of 2048 bits or more (RS256, PS256).
/// </summary>
public static class ClientKey
{
    public static readonly string[] Algorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSsaPssSha256];

    public static bool TryParse(JsonElement element, out JsonWebKey? key, out string error)
    {
        key = null;
        error = "";
        if (element.ValueKind != JsonValueKind.Object)
        {
            error = "must be a public JSON Web Key object";
            return false;
        }

        if (element.TryGetProperty("d", out _) || element.TryGetProperty("p", out _) || element.TryGetProperty("k", out _))
        {
            error = "holds private or secret key material; give the instance's public key only";
            return false;
        }

        JsonWebKey parsed;
        try
        {
            parsed = new JsonWebKey(element.GetRawText());
        }
        catch (ArgumentException)
        {
            error = "is not a valid JSON Web Key";
            return false;
        }

        var valid = parsed.Kty switch
        {
            JsonWebAlgorithmsKeyTypes.EllipticCurve => parsed.Crv == JsonWebKeyECTypes.P256 && Decodes(parsed.X, 32) && Decodes(parsed.Y, 32),
            JsonWebAlgorithmsKeyTypes.RSA => Decodes(parsed.E, 0) && Base64UrlEncoder.DecodeBytes(parsed.N ?? "").Length * 8 >= 2048,
            _ => false,
        };
        if (!valid)
        {
            error = "must be an EC P-256 or an RSA (2048 bits or more) public key";
            return false;
        }

        if (parsed.Alg is { Length: > 0 } alg && !Algorithms.Contains(alg, StringComparer.Ordinal))
        {
            error = $"has alg '{alg}'; the token endpoint accepts {string.Join(", ", Algorithms)}";
            return false;
        }

        key = parsed;
        return true;
    }

    private static bool Decodes(string? value, int length)
    {
        try
        {
            var bytes = Base64UrlEncoder.DecodeBytes(value ?? "");
            return length == 0 ? bytes.Length > 0 : bytes.Length == length;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
