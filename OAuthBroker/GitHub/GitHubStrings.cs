using System.Text.RegularExpressions;

namespace OAuthBroker.GitHub;

/// <summary>
/// What GitHub says about a user reaches log lines, HTML pages, the database and the JWT: each string is checked for
/// length and characters first. A login that fails ends the sign-in; a profile field that fails is left out.
/// </summary>
public static partial class GitHubStrings
{
    /// <summary>
    /// GitHub logins are letters, digits and hyphens; Enterprise Managed Users add <c>_shortcode</c>, and some GitHub
    /// Enterprise Server installations normalise directory names with dots. Nothing else: no spaces, no markup, no
    /// control characters that could forge a log line.
    /// </summary>
    public static bool IsLogin(string login) => LoginPattern().IsMatch(login);

    /// <summary>Free text (the display name): at most 256 characters, without control or format characters (such as bidi overrides).</summary>
    public static string? Text(string? value) =>
        value is { Length: > 0 and <= 256 } && !value.Any(c => char.IsControl(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format) ? value : null;

    /// <summary>An e-mail address as GitHub lists it: at most 254 printable ASCII characters around one '@'.</summary>
    public static string? Email(string? value) =>
        value is { Length: >= 3 and <= 254 } && value.All(c => c is > ' ' and < '\x7f') && value.Count(c => c == '@') == 1 && value[0] != '@' && value[^1] != '@' ? value : null;

    /// <summary>An avatar address: an absolute http(s) URL of at most 2,048 characters (never javascript: or data:).</summary>
    public static string? Url(string? value) =>
        value is { Length: > 0 and <= 2048 } && value.All(c => c is > ' ' and < '\x7f')
        && Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp)
            ? value
            : null;

    [GeneratedRegex("^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$", RegexOptions.CultureInvariant)]
    private static partial Regex LoginPattern();
}
