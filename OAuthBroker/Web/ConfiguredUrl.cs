namespace OAuthBroker.Web;

/// <summary>Checks URLs an operator configures (public URL, GitHub endpoints).</summary>
public static class ConfiguredUrl
{
    /// <summary>Returns why <paramref name="value"/> is unusable, or null when it is fine.</summary>
    /// <remarks>Plain http is accepted only for loopback, so a fake GitHub or a local demo can run on 127.0.0.1.</remarks>
    public static string? Check(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return "is required";
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            return $"must be an absolute http(s) URL; it is '{value}'";
        }

        if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback)
        {
            return $"must use https (plain http only on loopback); it is '{value}'";
        }

        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment) || !string.IsNullOrEmpty(uri.UserInfo))
        {
            return $"must not carry a query, fragment or user name; it is '{value}'";
        }

        return null;
    }
}
