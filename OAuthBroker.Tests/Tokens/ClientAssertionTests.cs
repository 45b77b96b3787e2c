using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jose;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Tokens;

/// <summary>
/// private_key_jwt at the token endpoint: the instance signs a short-lived assertion with its own key ("clientKey").
/// The valid assertions are made by panva's jose (the example instance's client-assertion.mjs), a client we did not
/// write; the broken ones by hand, each broken in one way.
/// </summary>
public sealed class ClientAssertionTests : FakeGitHubTest
{
    private const string Issuer = "http://localhost";
    private readonly ECDsa signingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        GitHub.ExpiringTokens = true;
        var document = JsonNode.Parse(Instances.Json)!;
        var trackeep = document["instances"]!.AsArray().OfType<JsonObject>().Single(entry => (string?)entry["id"] == "trackeep-home");
        trackeep["refresh"] = true;
        trackeep["clientKey"] = JsonSerializer.SerializeToNode(new Jwk(signingKey, isPrivate: false).ToDictionary());
        broker = new BrokerFactory(GitHub, Folder, document.ToJsonString());
    }

    public override async Task DisposeAsync()
    {
        signingKey.Dispose();
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task A_jose_made_assertion_refreshes_once_and_its_replay_is_refused()
    {
        var refresh = await RefreshTokenAsync();
        var assertion = await JoseAssertionAsync();

        using var refreshed = await PostAsync(refresh, assertion);

        refreshed.StatusCode.Should().Be(HttpStatusCode.OK, await refreshed.Content.ReadAsStringAsync());
        var newRefresh = Instances.Trackeep.Decrypt(new JsonWebToken((string)(await refreshed.Content.ReadFromJsonAsync<JsonObject>())!["token"]!).GetPayloadValue<string>("refresh_token"));
        using var replayed = await PostAsync(newRefresh, assertion);
        replayed.StatusCode.Should().Be(HttpStatusCode.Unauthorized, "a jti is accepted once");
        ((string?)(await replayed.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_client");
        using var fresh = await PostAsync(newRefresh, await JoseAssertionAsync());
        fresh.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    public static TheoryData<string> BrokenAssertions => new()
    {
        "audience is the token endpoint",
        "a second audience",
        "lives ten minutes",
        "expired",
        "no jti",
        "sub differs from iss",
        "signed by another key",
        "alg none",
        "HS256 with the public key",
    };

    [Theory]
    [MemberData(nameof(BrokenAssertions))]
    public async Task A_broken_assertion_gets_invalid_client_and_spends_nothing(string broken)
    {
        var refresh = await RefreshTokenAsync();

        using var response = await PostAsync(refresh, Broken(broken));

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized, broken);
        ((string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_client");
        GitHub.RefreshCallCount.Should().Be(0);
    }

    private string Broken(string how)
    {
        var now = DateTimeOffset.UtcNow;
        var claims = new Dictionary<string, object>
        {
            ["iss"] = "trackeep-home", ["sub"] = how == "sub differs from iss" ? "someone-else" : "trackeep-home",
            ["aud"] = how switch { "audience is the token endpoint" => Issuer + "/oauth/token", "a second audience" => new[] { Issuer, "https://evil.example" }, _ => Issuer },
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = how switch { "lives ten minutes" => now.AddMinutes(10).ToUnixTimeSeconds(), "expired" => now.AddMinutes(-2).ToUnixTimeSeconds(), _ => now.AddMinutes(2).ToUnixTimeSeconds() },
        };
        if (how != "no jti")
        {
            claims["jti"] = Guid.NewGuid().ToString();
        }

        switch (how)
        {
            case "signed by another key":
                using (var other = ECDsa.Create(ECCurve.NamedCurves.nistP256))
                {
                    return JWT.Encode(claims, other, JwsAlgorithm.ES256);
                }

            case "alg none":
                return JWT.Encode(claims, null, JwsAlgorithm.none);
            case "HS256 with the public key":
                return JWT.Encode(claims, System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Jwk(signingKey, isPrivate: false).ToDictionary())), JwsAlgorithm.HS256);
            default:
                return JWT.Encode(claims, signingKey, JwsAlgorithm.ES256);
        }
    }

    private async Task<string> JoseAssertionAsync()
    {
        var privateJwk = JsonSerializer.Serialize(new Jwk(signingKey, isPrivate: true).ToDictionary());
        var (exit, output, error) = await NodeProcess.RunAsync("examples/node-instance", "client-assertion.mjs",
            new Dictionary<string, string> { ["PRIVATE_JWK"] = privateJwk, ["CLIENT_ID"] = "trackeep-home", ["ISSUER"] = Issuer }, TimeSpan.FromSeconds(30));
        exit.Should().Be(0, error);
        return output.Trim();
    }

    private async Task<string> RefreshTokenAsync()
    {
        using var browser = broker.NewBrowser();
        var jwt = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        return Instances.Trackeep.Decrypt(jwt.GetPayloadValue<string>("refresh_token"));
    }

    private async Task<HttpResponseMessage> PostAsync(string refreshToken, string assertion)
    {
        using var client = broker.CreateClient();
        return await client.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = refreshToken,
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = assertion,
        }));
    }
}
