using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace OAuthBroker.Allowlist;

/// <summary>
/// A redirect URI reduced to the parts the broker compares: lower-case scheme and host, the port as written, and the
/// path exactly as written.
/// </summary>
/// <remarks>
/// The parser is deliberately stricter than RFC 3986 and does not use <see cref="Uri"/>: System.Uri trims, drops
/// and decodes characters, so a check on its output can pass a string a browser reads differently (the open-redirect
/// bypasses of oauth2-proxy and Keycloak). Anything outside a narrow ASCII grammar is refused before it is parsed.
/// </remarks>
public sealed record RedirectUri(string Scheme, string Host, int? Port, string Path)
{
    public const int MaxLength = 2048;

    private const string PathCharacters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:/";

    public bool IsLoopback => Host is "127.0.0.1" or "[::1]";

    public bool IsWildcard => Host.StartsWith("*.", StringComparison.Ordinal);

    public int EffectivePort => Port ?? (Scheme == "https" ? 443 : 80);

    public override string ToString() =>
        Port is { } port ? $"{Scheme}://{Host}:{port.ToString(CultureInfo.InvariantCulture)}{Path}" : $"{Scheme}://{Host}{Path}";

    /// <summary>Parses a redirect URI; <paramref name="error"/> is fixed text that never echoes the input.</summary>
    /// <param name="allowWildcard">Allowlist entries may use <c>*</c> as the whole left-most host label.</param>
    public static bool TryParse(string? raw, bool allowWildcard, [NotNullWhen(true)] out RedirectUri? uri, [NotNullWhen(false)] out string? error)
    {
        uri = null;
        error = CheckCharacters(raw);
        if (error is not null)
        {
            return false;
        }

        var separator = raw!.IndexOf("://", StringComparison.Ordinal);
        if (separator <= 0)
        {
            error = "is not an absolute https URL";
            return false;
        }

        var scheme = raw[..separator].ToLowerInvariant();
        if (scheme is not ("https" or "http"))
        {
            error = "uses a scheme other than https (or http for loopback)";
            return false;
        }

        var rest = raw[(separator + 3)..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var authority = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? "" : rest[slash..];

        if (!TrySplitAuthority(authority, allowWildcard, out var host, out var port, out error)
            || (error = CheckPath(path)) is not null)
        {
            return false;
        }

        var parsed = new RedirectUri(scheme, host, port, path);
        if (scheme == "http" && !parsed.IsLoopback)
        {
            error = "must use https (plain http is accepted only for 127.0.0.1 and [::1])";
            return false;
        }

        if (parsed.IsWildcard && scheme != "https")
        {
            error = "uses a wildcard host without https";
            return false;
        }

        uri = parsed;
        return true;
    }

    private static string? CheckCharacters(string? raw)
    {
        if (string.IsNullOrEmpty(raw))
        {
            return "is missing";
        }

        if (raw.Length > MaxLength)
        {
            return $"is longer than {MaxLength} characters";
        }

        foreach (var c in raw)
        {
            // Space, controls (tab, CR, LF) and anything non-ASCII are dropped or mapped by browsers and System.Uri.
            if (c is < '!' or > '~')
            {
                return "contains a space, a control character or a non-ASCII character";
            }

            switch (c)
            {
                case '\\':
                    return "contains a backslash, which browsers read as a slash";
                case '%':
                    return "contains percent-encoding, which the broker does not decode or accept";
                case '?':
                    return "has a query; register and send the callback URL without one";
                case '#':
                    return "has a fragment";
                default:
                    break;
            }
        }

        return null;
    }

    private static bool TrySplitAuthority(string authority, bool allowWildcard, out string host, out int? port, [NotNullWhen(false)] out string? error)
    {
        host = "";
        port = null;
        if (authority.Length == 0)
        {
            error = "has no host";
            return false;
        }

        if (authority.Contains('@', StringComparison.Ordinal))
        {
            error = "carries user information ('@' in the host part)";
            return false;
        }

        string portText;
        if (authority[0] == '[')
        {
            var close = authority.IndexOf(']', StringComparison.Ordinal);
            host = close < 0 ? authority : authority[..(close + 1)].ToLowerInvariant();
            // RFC 8252 loopback is the only IPv6 literal we accept; other forms (zone ids, IPv4-mapped) are refused.
            if (host != "[::1]")
            {
                error = "uses an IPv6 address other than [::1]";
                return false;
            }

            portText = authority[(close + 1)..];
            if (portText.Length > 0 && portText[0] != ':')
            {
                error = "has characters after the IPv6 address";
                return false;
            }
        }
        else
        {
            var colon = authority.IndexOf(':', StringComparison.Ordinal);
            host = (colon < 0 ? authority : authority[..colon]).ToLowerInvariant();
            portText = colon < 0 ? "" : authority[colon..];
            if ((error = CheckHostName(host, allowWildcard)) is not null)
            {
                return false;
            }
        }

        if (portText.Length > 0)
        {
            var digits = portText[1..];
            if (digits.Length is 0 or > 5 || digits[0] == '0' || !digits.All(char.IsAsciiDigit)
                || int.Parse(digits, CultureInfo.InvariantCulture) is var value && value > 65535)
            {
                error = "has an invalid port";
                return false;
            }

            port = value;
        }

        error = null;
        return true;
    }

    private static string? CheckHostName(string host, bool allowWildcard)
    {
        if (host.Length > 253)
        {
            return "has a host name longer than 253 characters";
        }

        var labels = host.Split('.');
        for (var i = 0; i < labels.Length; i++)
        {
            var label = labels[i];
            if (label.Length == 0)
            {
                return "has an empty host label (a leading, trailing or doubled dot)";
            }

            if (label == "*" && i == 0 && allowWildcard)
            {
                continue;
            }

            if (label.Length > 63 || label[0] == '-' || label[^1] == '-' || !label.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
            {
                return label.Contains('*', StringComparison.Ordinal)
                    ? "uses '*' other than as the whole left-most host label"
                    : "has a host label with characters other than letters, digits and inner hyphens";
            }
        }

        // WHATWG URL parsing treats a host whose last label is numeric (decimal, or 0x hex) as an IPv4 address and
        // accepts 2130706433, 0x7f.1 and 0177.0.0.1. Only a canonical dotted quad is unambiguous.
        var last = labels[^1];
        if (last.All(char.IsAsciiDigit) || last.StartsWith("0x", StringComparison.Ordinal))
        {
            if (labels.Length != 4 || !labels.All(IsDecimalOctet))
            {
                return "uses an IP address form other than a dotted quad";
            }

            if (labels[0] == "*")
            {
                return "uses a wildcard on an IP address";
            }
        }

        if (labels[0] == "*" && labels.Length < 3)
        {
            return "uses a wildcard directly under a top-level domain";
        }

        return null;
    }

    private static bool IsDecimalOctet(string label) =>
        label.Length is > 0 and <= 3 && label.All(char.IsAsciiDigit) && (label.Length == 1 || label[0] != '0')
        && int.Parse(label, CultureInfo.InvariantCulture) <= 255;

    private static string? CheckPath(string path)
    {
        if (path.Length == 0)
        {
            return null;
        }

        if (!path.All(c => PathCharacters.Contains(c, StringComparison.Ordinal)))
        {
            return "has a path character that is not allowed in a callback URL";
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment is "." or "..")
            {
                return "has '.' or '..' path segments";
            }
        }

        return null;
    }
}
