using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jose;
using Microsoft.IdentityModel.JsonWebTokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Tokens;

/// <summary>
/// PS256 client assertions, which the metadata advertises (<c>token_endpoint_auth_signing_alg_values_supported</c>):
/// made by two libraries we did not write, panva's jose (npm) and jose-jwt (.NET), with an RSA-2048 client key that
/// names PS256 or names no algorithm. A Python integrator's PyJWT assertion was once refused before any library saw it.
/// </summary>
public sealed class PssClientAssertionTests : FakeGitHubTest
{
    private const string Issuer = "http://localhost";
    private readonly RSA signingKey = RSA.Create(2048);

    public override async Task DisposeAsync()
    {
        signingKey.Dispose();
        await base.DisposeAsync();
    }

    [Theory]
    [InlineData("jose (npm)", true)]
    [InlineData("jose (npm)", false)]
    [InlineData("jose-jwt", true)]
    [InlineData("jose-jwt", false)]
    public async Task A_PS256_assertion_authenticates_the_client(string library, bool keyNamesPs256)
    {
        await using var broker = StartBroker(keyNamesPs256);
        using var metadataClient = broker.CreateClient();
        var metadata = await metadataClient.GetFromJsonAsync<JsonObject>("/.well-known/oauth-authorization-server");
        metadata!["token_endpoint_auth_signing_alg_values_supported"]!.AsArray().Select(alg => (string?)alg).Should().Contain("PS256");
        var refresh = await RefreshTokenAsync(broker);

        var assertion = library == "jose-jwt" ? JoseJwtAssertion() : await NpmJoseAssertionAsync();
        JsonDocument.Parse(Base64Url.Decode(assertion.Split('.')[0])).RootElement.GetProperty("alg").GetString().Should().Be("PS256");
        using var client = broker.CreateClient();
        using var refreshed = await client.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = refresh,
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = assertion,
        }));

        refreshed.StatusCode.Should().Be(HttpStatusCode.OK, await refreshed.Content.ReadAsStringAsync() + broker.Logs.AllText);
        GitHub.RefreshCallCount.Should().Be(1);
    }

    private BrokerFactory StartBroker(bool keyNamesPs256)
    {
        GitHub.ExpiringTokens = true;
        var document = JsonNode.Parse(Instances.Json)!;
        var trackeep = document["instances"]!.AsArray().OfType<JsonObject>().Single(entry => (string?)entry["id"] == "trackeep-home");
        trackeep["refresh"] = true;
        var clientKey = new Jwk(signingKey, isPrivate: false).ToDictionary();
        if (keyNamesPs256)
        {
            clientKey["alg"] = "PS256";
        }

        trackeep["clientKey"] = JsonSerializer.SerializeToNode(clientKey);
        return new BrokerFactory(GitHub, Folder, document.ToJsonString());
    }

    private string JoseJwtAssertion()
    {
        var now = DateTimeOffset.UtcNow;
        var claims = new Dictionary<string, object>
        {
            ["iss"] = "trackeep-home", ["sub"] = "trackeep-home", ["aud"] = Issuer, ["jti"] = Guid.NewGuid().ToString(),
            ["iat"] = now.ToUnixTimeSeconds(), ["exp"] = now.AddMinutes(2).ToUnixTimeSeconds(),
        };
        return JWT.Encode(claims, signingKey, JwsAlgorithm.PS256, new Dictionary<string, object> { ["typ"] = "JWT" });
    }

    private async Task<string> NpmJoseAssertionAsync()
    {
        var privateJwk = new Jwk(signingKey, isPrivate: true).ToDictionary();
        privateJwk["alg"] = "PS256";
        var (exit, output, error) = await NodeProcess.RunAsync("examples/node-instance", "client-assertion.mjs",
            new Dictionary<string, string> { ["PRIVATE_JWK"] = JsonSerializer.Serialize(privateJwk), ["CLIENT_ID"] = "trackeep-home", ["ISSUER"] = Issuer }, TimeSpan.FromSeconds(30));
        exit.Should().Be(0, error);
        return output.Trim();
    }

    private async Task<string> RefreshTokenAsync(BrokerFactory broker)
    {
        using var browser = broker.NewBrowser();
        var jwt = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        return Instances.Trackeep.Decrypt(jwt.GetPayloadValue<string>("refresh_token"));
    }
}
