using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using OAuthBroker.Allowlist;

namespace OAuthBroker.Lifecycle;

/// <summary>Who the caller at the token endpoint proved to be, or why it did not (RFC 6749 section 2.3).</summary>
public readonly record struct ClientAuthenticationResult(AllowlistInstance? Instance, string? Failure, bool UsedBasic);

/// <summary>
/// OAuth client authentication of an instance: <c>client_secret_basic</c> (RFC 6749 section 2.3.1, the id and secret
/// form-URL-encoded inside the Basic credentials) or <c>client_secret_post</c>. The entry holds the secret's SHA-256
/// only, compared in constant time; an unknown id costs the same hash and comparison as a wrong secret.
/// </summary>
public static class ClientAuthentication
{
    public const int MaxClientIdLength = 64;
    public const int MaxSecretLength = 256;

    public static readonly string[] Methods = ["client_secret_basic", "client_secret_post"];

    private static readonly byte[] NoSecret = new byte[SHA256.HashSizeInBytes];

    public static ClientAuthenticationResult Authenticate(HttpRequest request, IFormCollection form, AllowlistSnapshot allowlist)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(form);
        ArgumentNullException.ThrowIfNull(allowlist);
        var header = request.Headers.Authorization;
        var basic = header.Count == 1 && header[0]!.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase);
        var posted = form.ContainsKey("client_secret");
        if (basic && posted)
        {
            return new(null, "more than one client authentication method was used", basic);
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
            return new(null, "no client authentication", basic);
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
