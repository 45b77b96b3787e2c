using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Interop;

/// <summary>
/// The broker as an OpenID Connect provider, driven by panva's openid-client (a certified relying party we did not
/// write, in examples/node-instance/oidc-server.mjs): discovery, PKCE, state, nonce, iss in the authorization response,
/// ID token validation, userinfo and the refresh-token grant, as a confidential client (client_secret_basic,
/// private_key_jwt) and a public one.
/// </summary>
public sealed class OidcClientTests : FakeGitHubTest
{
    private const string ClientId = "oidc-app";

    [Fact]
    public async Task A_confidential_client_with_client_secret_basic_signs_in_reads_userinfo_and_calls_GitHub_with_the_decrypted_token()
    {
        var (broker, instance, secret) = await StartConfidentialAsync();
        await using var brokerLease = broker;
        using var instanceLease = instance;

        var result = await SignInAsync(instance);

        result.GetProperty("signedInAs").GetString().Should().Be(GitHub.User.Login);
        var claims = result.GetProperty("claims");
        claims.GetProperty("iss").GetString().Should().Be(broker.PublicUrl);
        claims.GetProperty("aud").GetString().Should().Be(ClientId);
        claims.GetProperty("email").GetString().Should().Be(GitHub.User.PrimaryEmail);
        claims.GetProperty("email_verified").GetBoolean().Should().BeTrue();
        claims.GetProperty("preferred_username").GetString().Should().Be(GitHub.User.Login);
        result.GetProperty("userinfo").GetProperty("sub").GetString().Should().Be(claims.GetProperty("sub").GetString());
        result.GetProperty("scope").GetString().Should().Be("openid profile email github:read:user github:user:email");
        result.GetProperty("gitHubUser").GetProperty("status").GetInt32().Should().Be(200);
        var digest = result.GetProperty("accessTokenSha256").GetString();
        GitHub.Secrets.Select(value => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)))).Should().Contain(digest);
        GitHub.TokenRequests.Single().CodeVerifier.Should().NotBeNullOrEmpty("the broker's own PKCE with GitHub goes on under the client's");
        SecretScan.AssertAbsent(GitHub.Secrets.Append(secret), broker.Logs.AllText, broker.DataPath, TestDatabase.PostgresDatabaseFor(Folder.Path));
    }

    [Fact]
    public async Task A_relying_party_on_its_own_origin_signs_in_through_Chromium_under_the_brokers_headers()
    {
        var (broker, instance, secret) = await StartConfidentialAsync();
        await using var brokerLease = broker;
        using var instanceLease = instance;
        new[] { broker.PublicUrl, GitHub.BaseUrl, instance.Url }.Select(url => new Uri(url).Port).Should().OnlyHaveUniqueItems("three origins");

        var walk = await BrowserWalk.RunAsync("instance-walk.mjs", new Dictionary<string, string> { ["INSTANCE_URL"] = instance.Url });

        walk.FinalUrl.Should().StartWith(instance.Url + "/auth/callback");
        walk.Root.GetProperty("result").GetProperty("signedInAs").GetString().Should().Be(GitHub.User.Login);
        walk.Root.GetProperty("requested").EnumerateArray().Select(request => request.GetString()).Should().Contain(request => request!.StartsWith($"GET {broker.PublicUrl}/oauth/authorize?", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_confidential_client_refreshes_the_GitHub_token_with_openid_clients_refresh_grant()
    {
        GitHub.ExpiringTokens = true;
        var key = InstanceKey.Rsa();
        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        await using var broker = StartBroker(entry =>
        {
            entry["encryptionKey"] = JsonSerializer.SerializeToNode(key.PublicJwk);
            entry["clientSecret"] = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
            entry["refresh"] = true;
        });
        using var instance = await StartClientAsync(broker, new() { ["CLIENT_SECRET"] = secret, ["INSTANCE_PRIVATE_JWK"] = key.PrivateJwkJson });
        using var browser = NewBrowser();
        var signedIn = await GetJsonAsync(browser, instance.Url + "/login");
        signedIn.GetProperty("canRefresh").GetBoolean().Should().BeTrue();

        var first = await GetJsonAsync(browser, instance.Url + "/refresh");
        var second = await GetJsonAsync(browser, instance.Url + "/refresh");

        GitHub.RefreshCallCount.Should().Be(2, "each refresh used the refresh token the one before returned");
        foreach (var refreshed in new[] { first, second })
        {
            refreshed.GetProperty("gitHubUser").GetProperty("status").GetInt32().Should().Be(200);
            refreshed.GetProperty("claims").GetProperty("sub").GetString().Should().Be(signedIn.GetProperty("claims").GetProperty("sub").GetString());
            refreshed.GetProperty("claims").GetProperty("auth_time").GetInt64().Should().Be(signedIn.GetProperty("claims").GetProperty("auth_time").GetInt64());
        }

        new[] { signedIn, first, second }.Select(result => result.GetProperty("accessTokenSha256").GetString()).Distinct().Should().HaveCount(3, "every refresh brought a new GitHub token");
        SecretScan.AssertAbsent(GitHub.Secrets.Append(secret), broker.Logs.AllText, broker.DataPath, TestDatabase.PostgresDatabaseFor(Folder.Path));
    }

    [Fact]
    public async Task A_confidential_client_with_private_key_jwt_signs_in()
    {
        using var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var broker = StartBroker(entry =>
        {
            entry["deliverAccessToken"] = false;
            entry["clientKey"] = JsonSerializer.SerializeToNode(new Jose.Jwk(signing, isPrivate: false).ToDictionary());
        });
        var privateJwk = new Jose.Jwk(signing, isPrivate: true).ToDictionary();
        privateJwk["alg"] = "ES256";
        using var instance = await StartClientAsync(broker, new() { ["INSTANCE_CLIENT_JWK"] = JsonSerializer.Serialize(privateJwk) });

        var result = await SignInAsync(instance);

        result.GetProperty("signedInAs").GetString().Should().Be(GitHub.User.Login);
        result.GetProperty("claims").GetProperty("aud").GetString().Should().Be(ClientId);
        result.GetProperty("gitHubUser").ValueKind.Should().Be(JsonValueKind.Null, "an identity-only entry receives no GitHub token");
    }

    [Fact]
    public async Task A_public_client_signs_in_with_PKCE_and_no_secret()
    {
        await using var broker = StartBroker(entry =>
        {
            entry["deliverAccessToken"] = false;
            entry["public"] = true;
        });
        using var instance = await StartClientAsync(broker, []);

        var result = await SignInAsync(instance);

        result.GetProperty("signedInAs").GetString().Should().Be(GitHub.User.Login);
        result.GetProperty("claims").GetProperty("iss").GetString().Should().Be(broker.PublicUrl);
    }

    private BrokerFactory StartBroker(Action<JsonObject> configure)
    {
        var port = LoopbackPort.Free();
        var document = new JsonObject
        {
            ["instances"] = new JsonArray(new JsonObject { ["id"] = ClientId, ["redirectUris"] = new JsonArray("http://127.0.0.1/auth/callback") }),
        };
        configure(document["instances"]![0]!.AsObject());
        var broker = new BrokerFactory(GitHub, Folder, document.ToJsonString(), new Dictionary<string, string?> { ["Broker:PublicUrl"] = $"http://127.0.0.1:{port}" });
        broker.UseKestrel(port);
        broker.StartServer();
        return broker;
    }

    /// <summary>A confidential client with a client secret and an RSA key for its GitHub token, on its own origin.</summary>
    private async Task<(BrokerFactory Broker, NodeProcess Instance, string Secret)> StartConfidentialAsync()
    {
        var key = InstanceKey.Rsa();
        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var broker = StartBroker(entry =>
        {
            entry["encryptionKey"] = JsonSerializer.SerializeToNode(key.PublicJwk);
            entry["clientSecret"] = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
        });
        return (broker, await StartClientAsync(broker, new() { ["CLIENT_SECRET"] = secret, ["INSTANCE_PRIVATE_JWK"] = key.PrivateJwkJson }), secret);
    }

    private Task<NodeProcess> StartClientAsync(BrokerFactory broker, Dictionary<string, string> more) =>
        NodeProcess.StartAsync("examples/node-instance", "oidc-server.mjs", new Dictionary<string, string>(more)
        {
            ["BROKER_URL"] = broker.PublicUrl,
            ["INSTANCE_ID"] = ClientId,
            ["GITHUB_API_URL"] = GitHub.ApiUrl,
            ["PORT"] = "0",
        });

    // A browser: follows every redirect (client -> broker -> GitHub -> broker -> client) with one cookie jar.
    private static HttpClient NewBrowser() =>
        new(new HttpClientHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 10, CookieContainer = new CookieContainer() }, disposeHandler: true);

    private static async Task<JsonElement> SignInAsync(NodeProcess instance)
    {
        using var browser = NewBrowser();
        return await GetJsonAsync(browser, instance.Url + "/login");
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient browser, string url)
    {
        using var response = await browser.GetAsync(url);
        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }
}
