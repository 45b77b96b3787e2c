using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Web;

namespace OAuthBroker.Demo;

/// <summary>
/// A stand-in for GitHub that lives inside the broker in demo mode (like Dex's mock connector): a consent page, the
/// code exchange with PKCE, and the two user endpoints, for one made-up user.
/// </summary>
public sealed class DemoGitHub(IOptions<BrokerOptions> broker, TimeProvider time)
{
    public const string ClientId = "demo-client-id";
    public const string PathBase = "/demo/github";
    public const string DemoLogin = "octocat-demo";

    private static readonly string[] ForwardedFields = ["redirect_uri", "state", "scope", "code_challenge"];

    private readonly ConcurrentDictionary<string, IssuedCode> codes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> tokens = new(StringComparer.Ordinal);

    /// <summary>A fresh secret per run: the demo's client secret is never a constant someone could reuse.</summary>
    public string ClientSecret { get; } = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));

    public string BaseUrl => broker.Value.Issuer + PathBase;

    public string ApiUrl => BaseUrl + "/api";

    public void Map(IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup(PathBase).WithTags("Demo").ExcludeFromDescription();
        group.MapGet("/login/oauth/authorize", ShowConsent);
        group.MapPost("/login/oauth/authorize", DecideAsync);
        group.MapPost("/login/oauth/access_token", ExchangeAsync);
        group.MapGet("/api/user", GetUser);
        group.MapGet("/api/user/emails", GetEmails);
    }

    private ContentHttpResult ShowConsent(HttpRequest request)
    {
        var query = request.Query;
        if (query["client_id"] != ClientId || query["redirect_uri"] != broker.Value.CallbackUrl || query["code_challenge_method"] != "S256")
        {
            return HtmlPage.Error("Demo GitHub", "The authorize request does not come from the demo broker.");
        }

        var hidden = string.Concat(ForwardedFields.Select(name =>
            $"<input type=\"hidden\" name=\"{name}\" value=\"{HtmlPage.Encode(query[name])}\">"));
        return HtmlPage.Render("Demo GitHub: authorize OAuthBroker (demo)?",
            $"<p>This stand-in for GitHub signs you in as <strong>{DemoLogin}</strong>, a made-up user. Requested scope: <code>{HtmlPage.Encode(query["scope"])}</code>.</p>"
            + $"<form method=\"post\">{hidden}<button name=\"decision\" value=\"approve\">Authorize</button><button name=\"decision\" value=\"deny\">Cancel</button></form>");
    }

    private async Task<IResult> DecideAsync(HttpRequest request)
    {
        var form = await request.ReadFormAsync();
        var redirectUri = form["redirect_uri"].ToString();
        if (redirectUri != broker.Value.CallbackUrl)
        {
            return HtmlPage.Error("Demo GitHub", "The redirect URI is not the demo broker's callback.");
        }

        if (form["decision"] != "approve")
        {
            return BackToTheBroker(QueryHelpers.AddQueryString(redirectUri, new Dictionary<string, string?>
            {
                ["error"] = "access_denied",
                ["error_description"] = "The user has denied your application access.",
                ["state"] = form["state"],
            }));
        }

        var code = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));
        codes[code] = new IssuedCode(form["code_challenge"].ToString(), form["scope"].ToString(), time.GetUtcNow().AddMinutes(10));
        return BackToTheBroker(QueryHelpers.AddQueryString(redirectUri, new Dictionary<string, string?> { ["code"] = code, ["state"] = form["state"] }));
    }

    // Not a 302: the broker's callback redirects on to the instance, on an origin this page's form-action cannot name,
    // and Chromium checks form-action against the whole redirect chain of the consent form's submission.
    private static ContentHttpResult BackToTheBroker(string callbackUrl) =>
        HtmlPage.Continue("Demo GitHub: back to the broker", "Taking you back to the broker.", callbackUrl);

    // Like GitHub: errors come back with HTTP 200 and an "error" field.
    private async Task<IResult> ExchangeAsync(HttpRequest request)
    {
        var form = await request.ReadFormAsync();
        if (form["client_id"] != ClientId || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(form["client_secret"].ToString()), Encoding.UTF8.GetBytes(ClientSecret)))
        {
            return Json(new() { ["error"] = "incorrect_client_credentials" });
        }

        if (!codes.TryRemove(form["code"].ToString(), out var issued) || issued.ExpiresAt < time.GetUtcNow()
            || Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(form["code_verifier"].ToString()))) != issued.CodeChallenge)
        {
            return Json(new() { ["error"] = "bad_verification_code", ["error_description"] = "The code passed is incorrect or expired." });
        }

        var token = "gho_demo" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        tokens[token] = issued.Scope;
        return Json(new() { ["access_token"] = token, ["token_type"] = "bearer", ["scope"] = issued.Scope.Replace(' ', ',') });
    }

    private JsonHttpResult<Dictionary<string, object>> GetUser(HttpRequest request) =>
        Authorized(request) is null
            ? Json(new() { ["message"] = "Bad credentials" }, StatusCodes.Status401Unauthorized)
            : Json(new()
            {
                ["id"] = 1000001,
                ["login"] = DemoLogin,
                ["name"] = "Demo Octocat",
                // Like a GitHub user who keeps the address private: the broker falls back to /user/emails.
                ["email"] = null!,
                ["avatar_url"] = "https://avatars.githubusercontent.com/u/583231",
            });

    private IResult GetEmails(HttpRequest request) =>
        Authorized(request) is not { } scope || !scope.Contains("user:email", StringComparison.Ordinal)
            ? Json(new() { ["message"] = "Resource not accessible by integration" }, StatusCodes.Status403Forbidden)
            : TypedResults.Json(
                new[] { new Dictionary<string, object> { ["email"] = "octocat-demo@example.com", ["primary"] = true, ["verified"] = true, ["visibility"] = null! } },
                BrokerJsonContext.Default.DictionaryStringObjectArray);

    private static JsonHttpResult<Dictionary<string, object>> Json(Dictionary<string, object> body, int status = StatusCodes.Status200OK) =>
        TypedResults.Json(body, BrokerJsonContext.Default.DictionaryStringObject, statusCode: status);

    private string? Authorized(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) && tokens.TryGetValue(header[7..], out var scope) ? scope : null;
    }

    private sealed record IssuedCode(string CodeChallenge, string Scope, DateTimeOffset ExpiresAt);
}

/// <summary>Points the broker's GitHub settings at the stand-in.</summary>
public sealed class DemoGitHubOptions(DemoGitHub demo) : IPostConfigureOptions<GitHubOptions>
{
    public void PostConfigure(string? name, GitHubOptions options)
    {
        options.ClientId = DemoGitHub.ClientId;
        options.ClientSecret = demo.ClientSecret;
        options.BaseUrl = demo.BaseUrl;
        options.ApiUrl = demo.ApiUrl;
    }
}
