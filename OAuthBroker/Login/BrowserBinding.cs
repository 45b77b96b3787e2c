using OAuthBroker.Broker;

namespace OAuthBroker.Login;

/// <summary>
/// The cookie that ties a pending login to the browser that started it (login CSRF, RFC 9700 section 4.7). Each
/// login gets its own cookie, named after its state, so parallel logins in two tabs do not overwrite each other and
/// a value planted in the browser beforehand is never reused.
/// </summary>
public static class BrowserBinding
{
    /// <summary>Whether the browser reaches the broker over https (directly, or behind a proxy that terminates TLS): cookies are then Secure and __Host-.</summary>
    public static bool IsSecure(HttpContext context, BrokerOptions broker) => context.Request.IsHttps || broker.IsServedOverHttps;

    public static string CookieName(string state, bool secure, BrokerOptions broker) =>
        // __Host- cookies need https; plain http is only allowed on loopback, where it cannot be tossed from a subdomain.
        broker.CookieName("oab-" + Convert.ToHexStringLower(PendingLoginStore.Hash("cookie:" + state).AsSpan(0, 8)), secure);

    public static void Set(HttpResponse response, string state, string browserSecret, bool secure, BrokerOptions broker) =>
        response.Cookies.Append(CookieName(state, secure, broker), browserSecret, new CookieOptions
        {
            HttpOnly = true,
            Secure = secure,
            // Lax: the cookie must come back on GitHub's top-level redirect to the callback.
            SameSite = SameSiteMode.Lax,
            Path = broker.CookiePath,
            MaxAge = PendingLoginStore.Lifetime,
            IsEssential = true,
        });

    public static string? Read(HttpRequest request, string state, bool secure, BrokerOptions broker) => request.Cookies[CookieName(state, secure, broker)];

    public static void Clear(HttpResponse response, string state, bool secure, BrokerOptions broker) =>
        response.Cookies.Delete(CookieName(state, secure, broker), new CookieOptions { Path = broker.CookiePath, Secure = secure, HttpOnly = true, SameSite = SameSiteMode.Lax });
}
