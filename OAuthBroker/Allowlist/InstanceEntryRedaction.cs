using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace OAuthBroker.Allowlist;

/// <summary>An instance entry fit to show or record: a shared secret (an oct key's <c>k</c>) becomes a fingerprint.</summary>
public static class InstanceEntryRedaction
{
    public static JsonObject? Redact(JsonObject? entry)
    {
        if (entry is null)
        {
            return null;
        }

        var copy = (JsonObject)entry.DeepClone();
        if (copy["encryptionKey"] is JsonObject key && key["k"] is JsonValue secret)
        {
            var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret.ToString()))).AsSpan(0, 16);
            key["k"] = $"(redacted; sha256 {fingerprint})";
        }

        return copy;
    }
}
