using System.Collections.Frozen;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Jose;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Web;

namespace OAuthBroker.Demo;

/// <summary>
/// A demo instance served by the broker on loopback: it does what a real instance does with the broker's answer
/// (check its own state, verify the JWT against the JWKS URL, decrypt the token, call GitHub) and shows the result.
/// </summary>
public sealed class DemoInstance(IOptions<BrokerOptions> broker, IOptions<GitHubOptions> gitHub, IHttpClientFactory httpClients) : IAllowlistSupplement, IDisposable
{
    public const string Id = "demo-instance";
    public const string PathBase = "/demo/instance";
    private const string StateCookie = "demo-instance-state";

    private static readonly FrozenSet<string> DemoScopes = new[] { "read:user", "user:email" }.ToFrozenSet(StringComparer.Ordinal);

    private readonly RSA privateKey = RSA.Create(2048);

    public string CallbackUrl => broker.Value.Issuer + PathBase + "/callback";

    public IEnumerable<AllowlistInstance> Instances
    {
        get
        {
            if (!RedirectUri.TryParse(CallbackUrl, allowWildcard: false, out var uri, out var error))
            {
                throw new InvalidOperationException($"Demo mode needs Broker:PublicUrl to be an allowlistable URL; the demo callback {error}.");
            }

            yield return new AllowlistInstance(Id, [uri], DemoScopes, InstanceEncryptionKey.FromRsaPublicKey(privateKey));
        }
    }

    public void Map(IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup(PathBase).WithTags("Demo").ExcludeFromDescription();
        group.MapGet("", Start);
        group.MapGet("/callback", CallbackAsync);
    }

    public void Dispose() => privateKey.Dispose();

    private ContentHttpResult Start(HttpContext context)
    {
        // The instance's own state protects the instance's callback against login CSRF, as the broker's protects its own.
        var state = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16));
        context.Response.Cookies.Append(StateCookie, state, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Lax, Path = PathBase });
        var login = QueryHelpers.AddQueryString(broker.Value.Issuer + "/auth/github", new Dictionary<string, string?> { ["redirect_uri"] = CallbackUrl, ["state"] = state });
        return HtmlPage.Render("Demo instance",
            "<p>This page plays a self-hosted application (like Trackeep) that lets the broker run &quot;Sign in with GitHub&quot;.</p>"
            + $"<p><a class=\"button\" href=\"{HtmlPage.Encode(login)}\">Sign in with GitHub (demo)</a></p>");
    }

    private async Task<IResult> CallbackAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        var expectedState = context.Request.Cookies[StateCookie];
        if (expectedState is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expectedState), Encoding.UTF8.GetBytes(query["state"].ToString())))
        {
            return Refused("The state does not match the one this instance sent.", StatusCodes.Status400BadRequest);
        }

        // RFC 9207: the answer names who sent it; an instance that trusts more than one provider must check it.
        if (query["iss"] != broker.Value.Issuer)
        {
            return Refused("The answer does not come from the broker this instance signs in with (iss).", StatusCodes.Status400BadRequest);
        }

        if (query["error"].Count > 0)
        {
            return Refused(query["error"] == "access_denied"
                ? "The sign-in was cancelled at GitHub, so the broker sent no token (access_denied)."
                : $"The broker reported {query["error"]}: {query["error_description"]}", StatusCodes.Status200OK);
        }

        using var http = httpClients.CreateClient(nameof(DemoInstance));
        var jwks = new JsonWebKeySet(await http.GetStringAsync(new Uri(broker.Value.Issuer + "/.well-known/jwks.json"), cancellationToken));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(query["token"].ToString(), new TokenValidationParameters
        {
            ValidIssuer = broker.Value.Issuer,
            ValidAudience = Id,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256],
        });
        if (!result.IsValid)
        {
            return Refused($"The JWT did not verify: {result.Exception?.GetType().Name}.", StatusCodes.Status400BadRequest);
        }

        var claims = (JsonWebToken)result.SecurityToken;
        var accessToken = JWT.Decode(claims.GetPayloadValue<string>("access_token"), privateKey, JweAlgorithm.RSA_OAEP_256, JweEncryption.A256GCM, SourceGeneratedJoseMapper.Settings);

        using var userRequest = new HttpRequestMessage(HttpMethod.Get, gitHub.Value.UserEndpoint);
        userRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        userRequest.Headers.UserAgent.ParseAdd("OAuthBroker-demo-instance");
        using var userResponse = await http.SendAsync(userRequest, cancellationToken);
        var userJson = await userResponse.Content.ReadAsStringAsync(cancellationToken);

        var rows = string.Concat(claims.Claims.Select(claim => $"<tr><th>{HtmlPage.Encode(claim.Type)}</th><td><code>{HtmlPage.Encode(claim.Value)}</code>{AsDate(claim)}</td></tr>"));
        return HtmlPage.Render($"Signed in as {claims.GetPayloadValue<string>("username")}",
            $"<p>The JWT's signature verified against <code>{HtmlPage.Encode(broker.Value.Issuer)}/.well-known/jwks.json</code> (key <code>{HtmlPage.Encode(claims.Kid)}</code>), with issuer and audience checked.</p>"
            + $"<h2>Verified claims</h2><table>{rows}</table>"
            + $"<h2>Decrypted GitHub access token</h2><p><code id=\"access-token\">{HtmlPage.Encode(accessToken)}</code> (a stand-in token: a real instance never shows it)</p>"
            + $"<h2>GitHub <code>/user</code> called with that token: HTTP {(int)userResponse.StatusCode}</h2><pre>{HtmlPage.Encode(PrettyJson(userJson))}</pre>"
            + StartAgain);
    }

    private const string StartAgain = $"<p><a class=\"button\" id=\"start-again\" href=\"{PathBase}\">Start again</a></p>";

    private static ContentHttpResult Refused(string message, int statusCode) =>
        HtmlPage.Render("Demo instance: not signed in", $"<p id=\"refused\">{HtmlPage.Encode(message)}</p>{StartAgain}", statusCode);

    /// <summary>The NumericDate claims (RFC 7519 section 2) read as dates beside their numbers.</summary>
    private static string AsDate(System.Security.Claims.Claim claim) =>
        claim.Type is "exp" or "iat" or "nbf" or "auth_time" or "refresh_token_expires_at" or "access_token_expires_at"
            && long.TryParse(claim.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            ? $" <span class=\"date\">{DateTimeOffset.FromUnixTimeSeconds(seconds).ToString("yyyy-MM-dd HH:mm:ss 'UTC'", System.Globalization.CultureInfo.InvariantCulture)}</span>"
            : "";

    private static string PrettyJson(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                document.RootElement.WriteTo(writer);
            }

            return Encoding.UTF8.GetString(buffer.ToArray());
        }
        catch (JsonException)
        {
            return json;
        }
    }
}
