using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

namespace OAuthBroker.Web;

/// <summary>Small server-rendered pages. Every value is HTML-encoded here, so callers cannot forget.</summary>
public static class HtmlPage
{
    private const string Style = "body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1f2328}"
        + "h1{font-size:1.4rem}code,pre{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px;overflow-wrap:anywhere;white-space:pre-wrap}"
        + "table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}"
        + "button,a.button{display:inline-block;font:inherit;padding:.45rem 1rem;margin:0 .5rem .5rem 0;border:1px solid #d0d7de;border-radius:6px;background:#f6f8fa;color:#1f2328;text-decoration:none;cursor:pointer}"
        + "a.button{background:#1f883d;border-color:#1a7f37;color:#fff}"
        + ".cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:6px;padding:.5rem 1rem;margin:0}"
        + "svg.chart{vertical-align:middle}";

    private static readonly string PolicyBeforeFormAction =
        $"default-src 'none'; style-src 'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(Style)))}'; img-src 'self' https:; ";

    private const string PolicyAfterFormAction = "; frame-ancestors 'none'; base-uri 'none'";

    /// <summary>The CSP allows exactly this stylesheet and no script at all; forms post to the broker only.</summary>
    public static readonly string ContentSecurityPolicy = PolicyBeforeFormAction + "form-action 'self'" + PolicyAfterFormAction;

    /// <summary>
    /// Widens this response's <c>form-action</c> from the broker's own origin to <paramref name="origins"/> as well.
    /// Chromium checks <c>form-action</c> against every redirect that follows a form's submission, not only its
    /// <c>action</c> (CSP3 §6.4.3 leaves it to the browser; Chromium applies it to the whole chain), so a form whose
    /// answer redirects to GitHub must name GitHub's origin here, or the click silently does nothing.
    /// </summary>
    public static void AllowFormsLeadingTo(HttpResponse response, IEnumerable<string> origins)
    {
        ArgumentNullException.ThrowIfNull(response);
        var sources = origins.Select(OriginOf).Distinct(StringComparer.Ordinal).ToList();
        response.Headers.ContentSecurityPolicy = PolicyBeforeFormAction + "form-action 'self'" + string.Concat(sources.Select(source => " " + source)) + PolicyAfterFormAction;
    }

    /// <summary>The origin of an absolute http(s) URL as a CSP source ("https://github.example.com:8443").</summary>
    private static string OriginOf(string url)
    {
        var uri = new Uri(url, UriKind.Absolute);
        if (uri.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException($"A form may only lead to http(s) origins, not {uri.Scheme}.", nameof(url));
        }

        return uri.GetLeftPart(UriPartial.Authority);
    }

    public static string Encode(string? text) => HtmlEncoder.Default.Encode(text ?? "");

    /// <summary>A page whose body is trusted HTML built by the caller from <see cref="Encode"/>d values.</summary>
    public static ContentHttpResult Render(string title, string trustedBodyHtml, int statusCode = StatusCodes.Status200OK) =>
        Page(title, "", trustedBodyHtml, statusCode);

    /// <summary>
    /// A page that moves the browser on to <paramref name="url"/> by itself (a meta refresh, as GitHub's own "you are
    /// being redirected" page does) with a link for when it does not. A navigation that a page starts is not part of a
    /// form's redirect chain, so it is what lets a form's answer lead to an origin that <c>form-action</c> cannot name
    /// in advance (an instance's callback). No script: the CSP stays as it is.
    /// </summary>
    public static ContentHttpResult Continue(string title, string message, string url) =>
        Page(title, $"<meta http-equiv=\"refresh\" content=\"0;url={Encode(url)}\">",
            $"<p>{Encode(message)}</p><p><a class=\"button\" id=\"continue\" href=\"{Encode(url)}\">Continue</a></p>", StatusCodes.Status200OK);

    /// <summary>The one page template: trusted head and body HTML built by the caller from encoded values.</summary>
    private static ContentHttpResult Page(string title, string trustedHeadHtml, string trustedBodyHtml, int statusCode) =>
        TypedResults.Content(
            $"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
            + $"{trustedHeadHtml}<title>{Encode(title)}</title><style>{Style}</style></head><body><h1>{Encode(title)}</h1>{trustedBodyHtml}</body></html>",
            "text/html; charset=utf-8",
            Encoding.UTF8,
            statusCode);

    public static ContentHttpResult Error(string title, string message, int statusCode = StatusCodes.Status400BadRequest) =>
        Render(title, $"<p>{Encode(message)}</p><p>Go back to the application you came from and start the sign-in again.</p>", statusCode);
}

/// <summary>Answers a refused browser request with a page, or with RFC 9457 problem details for API clients.</summary>
public static class Refusal
{
    public static IResult For(HttpRequest request, string title, string detail, int statusCode = StatusCodes.Status400BadRequest) =>
        WantsJson(request)
            ? TypedResults.Problem(detail, statusCode: statusCode, title: title)
            : HtmlPage.Error(title, detail, statusCode);

    /// <summary>A 503 with Retry-After, for what should work again shortly: the request was not carried out.</summary>
    public static Task UnavailableAsync(HttpContext context, string title, string detail, TimeSpan retryAfter)
    {
        ArgumentNullException.ThrowIfNull(context);
        RateLimits.SetRetryAfter(context.Response, retryAfter);
        return For(context.Request, title, detail, StatusCodes.Status503ServiceUnavailable).ExecuteAsync(context);
    }

    private static bool WantsJson(HttpRequest request)
    {
        var accept = request.Headers.Accept.ToString();
        return (accept.Contains("application/json", StringComparison.OrdinalIgnoreCase) || accept.Contains("application/problem+json", StringComparison.OrdinalIgnoreCase))
            && !accept.Contains("text/html", StringComparison.OrdinalIgnoreCase);
    }
}

public static class SecurityHeaders
{
    /// <summary>
    /// Headers every response carries; pages cannot be framed, sniffed or leak their URL (which may hold a token) as
    /// Referer; HSTS when the broker is served over https.
    /// </summary>
    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app)
    {
        var https = app.ApplicationServices.GetRequiredService<IOptions<BrokerOptions>>().Value.IsServedOverHttps;
        return app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            if (https)
            {
                headers.StrictTransportSecurity = "max-age=31536000";
            }

            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            headers.ContentSecurityPolicy = HtmlPage.ContentSecurityPolicy;
            if (context.Request.Path.StartsWithSegments("/auth", StringComparison.Ordinal)
                || context.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal)
                || context.Request.Path.StartsWithSegments("/demo", StringComparison.Ordinal))
            {
                headers.CacheControl = "no-store";
                headers.Pragma = "no-cache";
            }

            await next(context);
        });
    }
}

public static class PageAssets
{
    /// <summary>Browsers ask for an icon on every page; "no content" keeps their consoles and our logs free of 404s.</summary>
    public static IEndpointRouteBuilder MapPageAssets(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/favicon.ico", () => TypedResults.NoContent()).ExcludeFromDescription();
        return endpoints;
    }
}
