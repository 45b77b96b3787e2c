using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Interop;

/// <summary>
/// The native executable the Dockerfile ships (its JSON, SQL mapping and endpoints are all generated at build time):
/// whole logins through it, its tokens checked by the Node.js example instance (panva's jose) and by IdentityModel.
/// </summary>
public sealed class NativeBrokerTests : FakeGitHubTest
{
    [Theory]
    [InlineData("RSA-OAEP-256")]
    [InlineData("ECDH-ES+A256KW")]
    [InlineData("dir")]
    public async Task The_example_instance_signs_in_through_the_native_broker(string algorithm)
    {
        var key = algorithm switch
        {
            "RSA-OAEP-256" => InstanceKey.Rsa(algorithm),
            "ECDH-ES+A256KW" => InstanceKey.Ec(),
            _ => InstanceKey.Oct(algorithm),
        };
        await using var broker = await NativeBroker.StartAsync(GitHub, Folder.Path, new AllowlistBuilder().Add("node-example", ["http://127.0.0.1/auth/callback"], key).ToJson());
        using var instance = await NodeProcess.StartAsync("examples/node-instance", "server.mjs", new Dictionary<string, string>
        {
            ["BROKER_URL"] = broker.PublicUrl,
            ["INSTANCE_ID"] = "node-example",
            ["INSTANCE_PRIVATE_JWK"] = key.PrivateJwkJson,
            ["GITHUB_API_URL"] = GitHub.ApiUrl,
            ["PORT"] = "0",
        });
        using var handler = new HttpClientHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 10, CookieContainer = new CookieContainer() };
        using var browser = new HttpClient(handler);

        using var response = await browser.GetAsync(instance.Url + "/login");

        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, body);
        using var result = JsonDocument.Parse(body);
        result.RootElement.GetProperty("signedInAs").GetString().Should().Be(GitHub.User.Login);
        result.RootElement.GetProperty("claims").GetProperty("iss").GetString().Should().Be(broker.PublicUrl);
        result.RootElement.GetProperty("gitHubUser").GetProperty("status").GetInt32().Should().Be(200);
        var digest = result.RootElement.GetProperty("accessTokenSha256").GetString();
        GitHub.Secrets.Select(secret => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)))).Should().Contain(digest);
    }

    [Fact]
    public async Task A_login_through_the_native_broker_gives_a_token_that_verifies_decrypts_and_opens_the_user_endpoint()
    {
        var key = InstanceKey.Rsa();
        await using var broker = await NativeBroker.StartAsync(GitHub, Folder.Path, new AllowlistBuilder().Add("trackeep", ["https://trackeep.example.org/auth/callback"], key).ToJson());
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(broker.PublicUrl) };

        using var start = await http.GetAsync(Browser.StartUrl("https://trackeep.example.org/auth/callback", state: "s-123"));
        start.StatusCode.Should().Be(HttpStatusCode.Redirect, await start.Content.ReadAsStringAsync());
        var callback = await Browser.ApproveAtGitHubAsync(start.Headers.Location!);
        using var back = await http.GetAsync(new Uri(callback).PathAndQuery);

        back.StatusCode.Should().Be(HttpStatusCode.Redirect, await back.Content.ReadAsStringAsync());
        var query = QueryHelpers.ParseQuery(back.Headers.Location!.Query);
        query["state"].ToString().Should().Be("s-123");
        var jwt = query["token"].ToString();
        var jwks = new JsonWebKeySet(await http.GetStringAsync("/.well-known/jwks.json"));
        var validation = await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = broker.PublicUrl,
            ValidAudience = "trackeep",
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        });
        validation.IsValid.Should().BeTrue(validation.Exception?.Message);
        var token = (JsonWebToken)validation.SecurityToken;
        token.GetPayloadValue<string>("username").Should().Be(GitHub.User.Login);
        GitHub.Secrets.Should().Contain(key.Decrypt(token.GetPayloadValue<string>("access_token")));

        using var me = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        me.Headers.Authorization = new("Bearer", jwt);
        using var profile = await http.SendAsync(me);
        profile.StatusCode.Should().Be(HttpStatusCode.OK);
        using var user = JsonDocument.Parse(await profile.Content.ReadAsStringAsync());
        user.RootElement.GetProperty("username").GetString().Should().Be(GitHub.User.Login);
        user.RootElement.GetProperty("github_id").GetInt64().Should().Be(GitHub.User.Id);
    }

    [Fact]
    public async Task The_native_broker_serves_the_admin_API_reads_and_edits()
    {
        const string token = "native-admin-token-0123456789abcdef0123456789";
        await using var broker = await NativeBroker.StartAsync(GitHub, Folder.Path, Instances.Json, new Dictionary<string, string?> { ["Admin:ApiToken"] = token });
        using var api = new HttpClient { BaseAddress = new Uri(broker.PublicUrl) };
        api.DefaultRequestHeaders.Authorization = new("Bearer", token);

        using var list = await api.GetAsync("/admin/api/instances");
        list.StatusCode.Should().Be(HttpStatusCode.OK, await list.Content.ReadAsStringAsync());
        var etag = list.Headers.ETag!.Tag;
        using var listed = JsonDocument.Parse(await list.Content.ReadAsStringAsync());
        listed.RootElement.GetProperty("instances").EnumerateArray().Select(entry => entry.GetProperty("id").GetString()).Should().Contain("trackeep-home");

        using var create = new HttpRequestMessage(HttpMethod.Post, "/admin/api/instances")
        {
            Content = new StringContent("""{"id":"native-made","redirectUris":["https://native-made.example.com/cb"],"deliverAccessToken":false}""", Encoding.UTF8, "application/json"),
        };
        create.Headers.IfMatch.ParseAdd(etag);
        using var created = await api.SendAsync(create);
        created.StatusCode.Should().Be(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString().Should().Be("native-made");

        // The edit reaches the matcher through the live reload (file events, or hash polling every second).
        var checkUrl = "/admin/api/allowlist/check?uri=" + Uri.EscapeDataString("https://native-made.example.com/cb");
        await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () =>
        {
            using var check = JsonDocument.Parse(await api.GetStringAsync(checkUrl));
            return check.RootElement.GetProperty("accepted").GetBoolean();
        });

        using var reloaded = JsonDocument.Parse(await api.GetStringAsync(checkUrl));
        reloaded.RootElement.GetProperty("accepted").GetBoolean().Should().BeTrue();
        reloaded.RootElement.GetProperty("instanceId").GetString().Should().Be("native-made");
        using var audit = JsonDocument.Parse(await api.GetStringAsync("/admin/api/audit?kind=admin"));
        audit.RootElement.GetProperty("events").EnumerateArray().Should().Contain(entry => entry.GetProperty("instanceId").GetString() == "native-made");
        using var health = JsonDocument.Parse(await api.GetStringAsync("/admin/api/health"));
        health.RootElement.GetProperty("checks").EnumerateArray().Select(entry => entry.GetProperty("name").GetString()).Should().Equal("database", "allowlist", "signing_key");
    }

    [Fact]
    public async Task The_native_broker_refuses_what_the_JIT_build_refuses_and_answers_its_JSON_endpoints()
    {
        await using var broker = await NativeBroker.StartAsync(GitHub, Folder.Path, Instances.Json);
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(broker.PublicUrl) };

        using var foreign = await http.GetAsync(Browser.StartUrl("https://evil.example.net/callback"));
        foreign.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        foreign.Headers.Location.Should().BeNull();

        using var problem = new HttpRequestMessage(HttpMethod.Get, Browser.StartUrl("https://evil.example.net/callback"));
        problem.Headers.Accept.ParseAdd("application/json");
        using var refused = await http.SendAsync(problem);
        refused.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetInt32().Should().Be(400);

        using var metadata = JsonDocument.Parse(await http.GetStringAsync("/.well-known/oauth-authorization-server"));
        metadata.RootElement.GetProperty("issuer").GetString().Should().Be(broker.PublicUrl);
        metadata.RootElement.GetProperty("response_modes_supported").EnumerateArray().Select(mode => mode.GetString()).Should().Equal("query", "fragment", "form_post");
        metadata.RootElement.GetProperty("response_types_supported").EnumerateArray().Select(type => type.GetString()).Should().Equal("code");
        using var discovery = JsonDocument.Parse(await http.GetStringAsync("/.well-known/openid-configuration"));
        discovery.RootElement.GetProperty("issuer").GetString().Should().Be(broker.PublicUrl, "discovery works on the native build too (its JSON is source-generated)");
        using var ready = JsonDocument.Parse(await http.GetStringAsync("/readyz"));
        ready.RootElement.GetProperty("ready").GetBoolean().Should().BeTrue();
        ready.RootElement.EnumerateObject().Should().ContainSingle("anonymous callers learn only whether it is ready");
    }
}
