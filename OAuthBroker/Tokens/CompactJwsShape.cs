using System.Buffers.Text;
using System.Text.Json;

namespace OAuthBroker.Tokens;

/// <summary>
/// The shape a token must have before any library sees it: three base64url segments; a header with only
/// <c>alg</c>, <c>kid</c> and <c>typ</c>, <c>alg</c> exactly one the caller accepts (ES256 or RS256 unless it names
/// others); header and payload JSON objects without
/// duplicate keys. Anything else (alg none in any case, jku/x5u/jwk/x5c key hints, crit, a JWE, a duplicate claim a
/// second parser could read differently) is refused here, whatever the library would have done with it.
/// </summary>
public static class CompactJwsShape
{
    private static readonly string[] AllowedHeaderMembers = ["alg", "kid", "typ"];
    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false, MaxDepth = 8 };

    private static readonly string[] BrokerAlgorithms = ["ES256", "RS256"];

    public static string? Check(string token, IReadOnlyCollection<string>? algorithms = null)
    {
        algorithms ??= BrokerAlgorithms;
        var segments = token.Split('.');
        if (segments.Length != 3 || segments.Any(segment => segment.Length == 0 || !segment.All(IsBase64UrlCharacter)))
        {
            return "not three base64url segments";
        }

        using var header = ParseObject(segments[0]);
        if (header is null)
        {
            return "header is not a JSON object without duplicate keys";
        }

        foreach (var member in header.RootElement.EnumerateObject())
        {
            if (!AllowedHeaderMembers.Contains(member.Name, StringComparer.Ordinal))
            {
                return $"header member '{member.Name}' is not accepted";
            }
        }

        if (!header.RootElement.TryGetProperty("alg", out var alg) || alg.ValueKind != JsonValueKind.String || !algorithms.Contains(alg.GetString()!, StringComparer.Ordinal))
        {
            return $"alg is not {string.Join(" or ", algorithms)}";
        }

        using var payload = ParseObject(segments[1]);
        return payload is null ? "payload is not a JSON object without duplicate keys" : null;
    }

    private static JsonDocument? ParseObject(string segment)
    {
        try
        {
            var document = JsonDocument.Parse(Base64Url.DecodeFromChars(segment), Strict);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                return document;
            }

            document.Dispose();
            return null;
        }
        catch (Exception exception) when (exception is JsonException or FormatException)
        {
            return null;
        }
    }

    private static bool IsBase64UrlCharacter(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';
}
