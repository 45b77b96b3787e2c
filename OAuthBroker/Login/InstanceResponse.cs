using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.AspNetCore.WebUtilities;
using OAuthBroker.Allowlist;
using OAuthBroker.Web;

namespace OAuthBroker.Login;

/// <summary>
/// How the result reaches the instance: in the query (Trackeep's way), in the fragment, or as an auto-submitted form
/// (OAuth 2.0 Form Post Response Mode). The last two keep the JWT out of server logs and Referer headers.
/// </summary>
public static class InstanceResponse
{
    public const string Query = "query";
    public const string Fragment = "fragment";
    public const string FormPost = "form_post";

    public static readonly string[] Modes = [Query, Fragment, FormPost];

    // The one script the form_post page runs; the CSP allows exactly this text by its hash.
    private const string SubmitScript = "document.forms[0].submit();";
    private static readonly string SubmitScriptHash = Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(SubmitScript)));

    public static IResult To(string redirectUri, string responseMode, IReadOnlyList<KeyValuePair<string, string?>> parameters) => responseMode switch
    {
        Fragment => TypedResults.Redirect(redirectUri + "#" + new QueryBuilder(parameters.Where(pair => pair.Value is not null).Select(pair => new KeyValuePair<string, string>(pair.Key, pair.Value!))).ToString()[1..]),
        FormPost => new FormPostResult(redirectUri, parameters),
        // An empty fragment of our own: a browser carries a fragment over to a redirect that has none (RFC 9700 4.1.3).
        _ => TypedResults.Redirect(QueryHelpers.AddQueryString(redirectUri, parameters) + "#_"),
    };

    private sealed class FormPostResult(string redirectUri, IReadOnlyList<KeyValuePair<string, string?>> parameters) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            RedirectUri.TryParse(redirectUri, allowWildcard: false, out var target, out _);
            var origin = target is null ? "'none'" : (target with { Path = "" }).ToString();
            httpContext.Response.Headers.ContentSecurityPolicy =
                $"default-src 'none'; script-src 'sha256-{SubmitScriptHash}'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'";
            var fields = string.Concat(parameters.Where(pair => pair.Value is not null).Select(pair =>
                $"<input type=\"hidden\" name=\"{HtmlPage.Encode(pair.Key)}\" value=\"{HtmlPage.Encode(pair.Value)}\">"));
            var html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signing in</title></head><body>"
                + $"<form method=\"post\" action=\"{HtmlPage.Encode(redirectUri)}\">{fields}<noscript><button>Continue</button></noscript></form>"
                + $"<script>{SubmitScript}</script></body></html>";
            httpContext.Response.StatusCode = StatusCodes.Status200OK;
            httpContext.Response.ContentType = "text/html; charset=utf-8";
            await httpContext.Response.WriteAsync(html, httpContext.RequestAborted);
        }
    }
}
