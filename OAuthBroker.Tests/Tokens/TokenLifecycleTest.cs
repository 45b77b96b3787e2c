using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Tokens;

/// <summary>
/// What the token-lifecycle tests share: a broker on the fake GitHub, client secrets for trackeep-home and legacy-rsa,
/// logins whose JWTs are verified as an instance verifies them, and the calls of /oauth/token and /oauth/revoke.
/// </summary>
public abstract class TokenLifecycleTest : FakeGitHubTest
{
    protected static readonly string TrackeepSecret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
    protected static readonly string LegacySecret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
    /// <summary>Set by the subclass's InitializeAsync.</summary>
    protected BrokerFactory Broker { get; set; } = null!;

    public override async Task DisposeAsync()
    {
        if (Broker is not null)
        {
            await Broker.DisposeAsync();
        }

        await base.DisposeAsync();
    }

    /// <summary>What an entry's clientSecret holds for <paramref name="secret"/>.</summary>
    protected static string SecretEntry(string secret) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>A login to <paramref name="redirectUri"/>'s instance (trackeep-home by default), its JWT verified.</summary>
    protected async Task<JsonWebToken> LoginAsync(string redirectUri = StandardInstances.TrackeepCallback, string audience = "trackeep-home")
    {
        using var browser = Broker.NewBrowser();
        return await VerifiedAsync((await browser.LoginAsync(redirectUri)).Token, audience);
    }

    /// <summary>The GitHub access and refresh tokens in the JWT, decrypted with the key of its audience.</summary>
    protected (string Access, string Refresh) Tokens(JsonWebToken jwt)
    {
        var key = Instances.KeyFor(jwt.Audiences.Single());
        return (key.Decrypt(jwt.GetPayloadValue<string>("access_token")), key.Decrypt(jwt.GetPayloadValue<string>("refresh_token")));
    }

    /// <summary>Verified as an instance verifies it: the broker's JWKS, its issuer, the instance as audience (and <paramref name="type"/> as <c>typ</c> when given).</summary>
    protected async Task<JsonWebToken> VerifiedAsync(string token, string audience = "trackeep-home", string? type = null)
    {
        using var client = Broker.CreateClient();
        var jwks = new JsonWebKeySet(await client.GetStringAsync("/.well-known/jwks.json"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = Broker.PublicUrl.TrimEnd('/'),
            ValidAudience = audience,
            IssuerSigningKeys = jwks.Keys,
            ValidTypes = type is null ? null : [type],
        });
        result.IsValid.Should().BeTrue(result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }

    protected Task<HttpResponseMessage> RefreshAsync(string refreshToken, string clientId, string secret) =>
        PostAsync(new() { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken },
            new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(clientId)}:{Uri.EscapeDataString(secret)}"))));

    protected Task<HttpResponseMessage> RevokeAsync(string accessToken, string clientId, string secret) =>
        PostAsync(new() { ["token"] = accessToken },
            new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{secret}"))), "/oauth/revoke");

    protected async Task<HttpResponseMessage> PostAsync(Dictionary<string, string> form, AuthenticationHeaderValue? authorization, string path = "/oauth/token")
    {
        using var client = Broker.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = authorization;
        return await client.SendAsync(request);
    }

}
