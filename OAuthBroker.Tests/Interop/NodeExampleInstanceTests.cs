using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Interop;

/// <summary>
/// The README's integration example (examples/node-instance, panva's jose) against a running broker: a client we did
/// not write verifies our JWT via the JWKS URL, checks iss and aud, decrypts our JWE and calls GitHub with the token.
/// </summary>
public sealed class NodeExampleInstanceTests : FakeGitHubTest
{
    public static TheoryData<string> KeyTypes => ["RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "A256KW", "dir"];

    [Theory]
    [MemberData(nameof(KeyTypes))]
    public async Task Example_instance_verifies_the_JWT_decrypts_the_token_and_calls_GitHub(string algorithm)
    {
        var key = algorithm switch
        {
            "RSA-OAEP-256" or "RSA-OAEP" => InstanceKey.Rsa(algorithm),
            "ECDH-ES+A256KW" => InstanceKey.Ec(),
            _ => InstanceKey.Oct(algorithm),
        };
        await using var broker = StartBroker(key);
        using var instance = await StartInstanceAsync(broker, key, "node-example");

        var (status, body) = await SignInThroughInstanceAsync(instance);

        status.Should().Be(HttpStatusCode.OK, body);
        using var result = JsonDocument.Parse(body);
        var root = result.RootElement;
        root.GetProperty("signedInAs").GetString().Should().Be(GitHub.User.Login);
        root.GetProperty("claims").GetProperty("aud").GetString().Should().Be("node-example");
        root.GetProperty("claims").GetProperty("iss").GetString().Should().Be(broker.PublicUrl);
        root.GetProperty("gitHubUser").GetProperty("status").GetInt32().Should().Be(200);
        root.GetProperty("gitHubUser").GetProperty("body").GetProperty("login").GetString().Should().Be(GitHub.User.Login);
        var digest = root.GetProperty("accessTokenSha256").GetString();
        GitHub.Secrets.Select(secret => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)))).Should().Contain(digest);
    }

    [Theory]
    [InlineData("query")]
    [InlineData("fragment")]
    [InlineData("form_post")]
    public async Task Example_instance_signs_in_through_Chromium_in_every_response_mode(string mode)
    {
        var key = InstanceKey.Rsa();
        await using var broker = StartBroker(key);
        using var instance = await StartInstanceAsync(broker, key, "node-example", new() { ["RESPONSE_MODE"] = mode });

        new[] { broker.PublicUrl, GitHub.BaseUrl, instance.Url }.Select(url => new Uri(url).Port).Should().OnlyHaveUniqueItems("broker, GitHub and instance on three origins");

        // Fails on any console error or CSP violation on the way.
        var walk = await BrowserWalk.RunAsync("instance-walk.mjs", new Dictionary<string, string> { ["INSTANCE_URL"] = instance.Url });

        walk.FinalUrl.Should().StartWith(instance.Url + "/auth/", "the walk ends at the instance");
        var result = walk.Root.GetProperty("result");
        result.GetProperty("responseMode").GetString().Should().Be(mode);
        result.GetProperty("signedInAs").GetString().Should().Be(GitHub.User.Login, result.ToString());
        result.GetProperty("gitHubUser").GetProperty("status").GetInt32().Should().Be(200);
        var requested = walk.Root.GetProperty("requested").EnumerateArray().Select(request => request.GetString()!).ToList();
        var toInstance = requested.Where(request => request.Contains(instance.Url + "/auth/", StringComparison.Ordinal)).ToList();
        if (mode == "query")
        {
            toInstance.Should().Contain(request => request.StartsWith("GET ", StringComparison.Ordinal) && request.Contains("token=", StringComparison.Ordinal));
        }
        else
        {
            requested.Should().NotContain(request => request.Contains("token=", StringComparison.Ordinal), "the JWT never travels in a URL a server sees");
            toInstance.Should().Contain($"POST {instance.Url}/auth/complete");
        }
    }

    [Fact]
    public async Task Example_instance_decrypts_with_a_key_that_has_no_alg_and_carries_use_key_ops_and_kid()
    {
        var key = InstanceKey.Rsa();
        var publicJwk = new Dictionary<string, object>(key.PublicJwk) { ["use"] = "enc", ["key_ops"] = new[] { "encrypt", "wrapKey" }, ["kid"] = "instance-2026" };
        publicJwk.Remove("alg");
        var privateJwk = new Dictionary<string, object>(key.PrivateJwk) { ["kid"] = "instance-2026" };
        privateJwk.Remove("alg");
        var withoutAlg = key with { PublicJwk = publicJwk, PrivateJwk = privateJwk };
        await using var broker = StartBroker(withoutAlg);
        using var instance = await StartInstanceAsync(broker, withoutAlg, "node-example");

        var (status, body) = await SignInThroughInstanceAsync(instance);

        status.Should().Be(HttpStatusCode.OK, body);
        JsonDocument.Parse(body).RootElement.GetProperty("gitHubUser").GetProperty("status").GetInt32().Should().Be(200);
    }

    [Theory]
    [InlineData("https://another-provider.example.com")]
    [InlineData(null)]
    public async Task Example_instance_refuses_an_answer_that_names_another_issuer_or_none(string? iss)
    {
        var key = InstanceKey.Rsa();
        await using var broker = StartBroker(key);
        using var instance = await StartInstanceAsync(broker, key, "node-example");
        using var handler = new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() };
        using var browser = new HttpClient(handler);
        using var login = await browser.GetAsync(instance.Url + "/login");
        var state = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(login.Headers.Location!.Query)["state"].ToString();

        var callback = $"{instance.Url}/auth/callback?state={Uri.EscapeDataString(state)}&token=x" + (iss is null ? "" : "&iss=" + Uri.EscapeDataString(iss));
        using var answer = await browser.GetAsync(callback);

        answer.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await answer.Content.ReadAsStringAsync()).Should().Contain("issuer_mismatch");
    }

    [Fact]
    public async Task Example_instance_refuses_a_token_issued_for_another_audience()
    {
        var key = InstanceKey.Rsa();
        await using var broker = StartBroker(key);
        using var impostor = await StartInstanceAsync(broker, key, "some-other-instance");

        var (status, body) = await SignInThroughInstanceAsync(impostor);

        status.Should().Be(HttpStatusCode.Unauthorized);
        body.Should().Contain("ERR_JWT_CLAIM_VALIDATION_FAILED");
    }

    [Fact]
    public async Task Example_instance_refreshes_and_revokes_through_the_broker_with_a_jose_made_client_assertion()
    {
        GitHub.ExpiringTokens = true;
        var key = InstanceKey.Rsa();
        using var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var broker = StartBroker(key, clientKey: new Jose.Jwk(signing, isPrivate: false).ToDictionary());
        using var instance = await StartInstanceAsync(broker, key, "node-example", new()
        {
            ["INSTANCE_CLIENT_JWK"] = JsonSerializer.Serialize(new Jose.Jwk(signing, isPrivate: true).ToDictionary()),
        });
        var (status, body) = await SignInThroughInstanceAsync(instance);
        status.Should().Be(HttpStatusCode.OK, body);
        var firstDigest = JsonDocument.Parse(body).RootElement.GetProperty("accessTokenSha256").GetString();
        using var http = new HttpClient();

        using var refreshed = await http.PostAsync(instance.Url + "/refresh", null);

        var refreshBody = await refreshed.Content.ReadAsStringAsync();
        refreshed.StatusCode.Should().Be(HttpStatusCode.OK, refreshBody);
        var root = JsonDocument.Parse(refreshBody).RootElement;
        root.GetProperty("accessTokenSha256").GetString().Should().NotBe(firstDigest, "the refresh rotated the token");
        root.GetProperty("gitHubUser").GetProperty("status").GetInt32().Should().Be(200, "the new token works at GitHub");
        var liveToken = GitHub.Secrets.Single(secret => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret))) == root.GetProperty("accessTokenSha256").GetString());

        using var revoked = await http.PostAsync(instance.Url + "/revoke", null);

        revoked.StatusCode.Should().Be(HttpStatusCode.OK, await revoked.Content.ReadAsStringAsync());
        GitHub.IsLive(liveToken).Should().BeFalse();
        GitHub.RefreshCallCount.Should().Be(1);
        GitHub.RevokeCallCount.Should().Be(1);
    }

    [Fact]
    public async Task Example_instance_verifies_a_relayed_GitHub_App_event_with_jose_and_refuses_a_forged_one()
    {
        var key = InstanceKey.Rsa();
        var nodePort = LoopbackPort.Free();
        var port = LoopbackPort.Free();
        var document = System.Text.Json.Nodes.JsonNode.Parse(new AllowlistBuilder().Add("node-example", ["http://127.0.0.1/auth/callback"], key).ToJson())!;
        var entry = document["instances"]![0]!.AsObject();
        entry.Remove("scopes");
        entry["provider"] = "github-app";
        entry["webhookUrl"] = $"http://127.0.0.1:{nodePort}/webhooks";
        await using var broker = new BrokerFactory(GitHub, Folder, document.ToJsonString(), new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = $"http://127.0.0.1:{port}",
            ["Webhooks:PollInterval"] = "00:00:00.050",
        });
        broker.UseKestrel(port);
        broker.StartServer();
        using var instance = await NodeProcess.StartAsync("examples/node-instance", "server.mjs", new Dictionary<string, string>
        {
            ["BROKER_URL"] = broker.PublicUrl,
            ["INSTANCE_ID"] = "node-example",
            ["INSTANCE_PRIVATE_JWK"] = key.PrivateJwkJson,
            ["PORT"] = nodePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<OAuthBroker.Webhooks.IWebhookStore>(broker.Services)
            .RecordInstallationAsync(5150, "node-example", null, "octo-org", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), CancellationToken.None);
        using var client = broker.CreateClient();

        using var delivered = await client.SendAsync(GitHub.Delivery("installation", FakeGitHub.InstallationEvent("suspend", 5150, "octo-org", GitHub.User), deliveryId: "node-1"));

        delivered.StatusCode.Should().Be(HttpStatusCode.OK);
        using var http = new HttpClient();
        string events = "[]";
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), async () => (events = await http.GetStringAsync(instance.Url + "/webhooks")) != "[]")).Should().BeTrue();
        using var received = JsonDocument.Parse(events);
        var first = received.RootElement.EnumerateArray().Single();
        first.GetProperty("event").GetString().Should().Be("installation");
        first.GetProperty("delivery").GetString().Should().Be("node-1");
        first.GetProperty("action").GetString().Should().Be("suspend");
        first.GetProperty("installation").GetInt64().Should().Be(5150);

        using var forged = await http.PostAsync(instance.Url + "/webhooks", new StringContent("eyJhbGciOiJub25lIn0.eyJhdWQiOiJub2RlLWV4YW1wbGUifQ."));
        forged.StatusCode.Should().Be(HttpStatusCode.Unauthorized, "an unsigned event is refused by jose");
    }

    private BrokerFactory StartBroker(InstanceKey key, IDictionary<string, object>? clientKey = null)
    {
        var port = LoopbackPort.Free();
        var allowlist = new AllowlistBuilder().Add("node-example", ["http://127.0.0.1/auth/callback"], key).ToJson();
        if (clientKey is not null)
        {
            var document = System.Text.Json.Nodes.JsonNode.Parse(allowlist)!;
            var entry = document["instances"]![0]!;
            entry["refresh"] = true;
            entry["clientKey"] = JsonSerializer.SerializeToNode(clientKey);
            allowlist = document.ToJsonString();
        }

        var broker = new BrokerFactory(GitHub, Folder, allowlist, new Dictionary<string, string?> { ["Broker:PublicUrl"] = $"http://127.0.0.1:{port}" });
        broker.UseKestrel(port);
        broker.StartServer();
        return broker;
    }

    private Task<NodeProcess> StartInstanceAsync(BrokerFactory broker, InstanceKey key, string instanceId, Dictionary<string, string>? more = null) =>
        NodeProcess.StartAsync("examples/node-instance", "server.mjs", new Dictionary<string, string>(more ?? [])
        {
            ["BROKER_URL"] = broker.PublicUrl,
            ["INSTANCE_ID"] = instanceId,
            ["INSTANCE_PRIVATE_JWK"] = key.PrivateJwkJson,
            ["GITHUB_API_URL"] = GitHub.ApiUrl,
            ["PORT"] = "0",
        });

    // A browser: follows every redirect (instance -> broker -> GitHub -> broker -> instance) with one cookie jar.
    private static async Task<(HttpStatusCode Status, string Body)> SignInThroughInstanceAsync(NodeProcess instance)
    {
        using var handler = new HttpClientHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 10, CookieContainer = new CookieContainer() };
        using var browser = new HttpClient(handler);
        using var response = await browser.GetAsync(instance.Url + "/login");
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

}
