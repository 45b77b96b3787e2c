using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tests.Tokens;
using OAuthBroker.Webhooks;

namespace OAuthBroker.Tests.Webhooks;

/// <summary>
/// The GitHub App's webhooks through the real pipeline: deliveries signed by the fake GitHub as GitHub signs them, the
/// broker's own reaction, and the relay to instance endpoints on 127.0.0.1. trackeep-home and legacy-rsa sign in
/// through the GitHub App and each has a webhook URL of its own; direct-app signs in through it without one.
/// </summary>
public sealed class WebhookTests : TokenLifecycleTest
{
    private const string ApiToken = "webhook-test-admin-token-0123456789abcdef";
    private const string LegacyCallback = "https://legacy.example.com/oauth/done";
    private WebhookReceiver trackeep = null!;
    private WebhookReceiver legacy = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        trackeep = await WebhookReceiver.StartAsync();
        legacy = await WebhookReceiver.StartAsync();
        Broker = NewBroker();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await trackeep.DisposeAsync();
        await legacy.DisposeAsync();
    }

    [Fact]
    public void GitHubs_own_test_vector_verifies_and_a_changed_byte_or_secret_does_not()
    {
        const string expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        var secret = Encoding.UTF8.GetBytes("It's a Secret to Everybody");

        WebhookSignature.IsValid("Hello, World!"u8, expected, secret).Should().BeTrue();
        WebhookSignature.Sign("Hello, World!"u8, "It's a Secret to Everybody").Should().Be(expected);
        WebhookSignature.IsValid("Hello, World?"u8, expected, secret).Should().BeFalse();
        WebhookSignature.IsValid("Hello, World!"u8, expected, Encoding.UTF8.GetBytes("It's a Secret to Everybody.")).Should().BeFalse();
        WebhookSignature.IsValid("Hello, World!"u8, expected.ToUpperInvariant(), secret).Should().BeFalse("the prefix is sha256=, lower-case");
        WebhookSignature.IsValid("Hello, World!"u8, expected[..^2], secret).Should().BeFalse();
        WebhookSignature.IsValid("Hello, World!"u8, null, secret).Should().BeFalse();
    }

    [Fact]
    public async Task Through_the_endpoint_the_test_vectors_signature_is_accepted_and_its_body_then_refused_as_no_JSON()
    {
        await Broker.DisposeAsync();
        Broker = NewBroker(new() { ["GitHubApp:WebhookSecret"] = "It's a Secret to Everybody" });
        using var client = Broker.CreateClient();

        using var signed = await client.SendAsync(Raw("Hello, World!", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"));
        using var forged = await client.SendAsync(Raw("Hello, World?", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"));

        signed.StatusCode.Should().Be(HttpStatusCode.BadRequest, "the signature holds; the body is no JSON");
        forged.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Unsigned_forged_and_oversized_deliveries_are_refused_counted_in_a_bounded_audit_and_write_no_delivery()
    {
        using var client = Broker.CreateClient();
        var payload = FakeGitHub.AppAuthorizationRevoked(GitHub.User);
        for (var i = 0; i < 10; i++)
        {
            using var unsigned = GitHub.Delivery(WebhookEvents.AppAuthorization, payload);
            unsigned.Headers.Remove(WebhookSignature.Header);
            (await client.SendAsync(unsigned)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
            using var forged = GitHub.Delivery(WebhookEvents.AppAuthorization, payload, secret: "not-the-webhook-secret");
            (await client.SendAsync(forged)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
            using var oversized = GitHub.Delivery(WebhookEvents.AppAuthorization, new JsonObject { ["action"] = "revoked", ["padding"] = new string('x', 1024 * 1024) });
            (await client.SendAsync(oversized)).StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        }

        (await Broker.ScalarAsync("SELECT COUNT(*) FROM webhook_deliveries")).Should().Be(0);
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM webhook_outbox")).Should().Be(0);
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM users WHERE revoked_at IS NOT NULL")).Should().Be(0);
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE reason LIKE 'webhook:%'")).Should().BeInRange(3, 6, "one counted row per reason and minute");
        (await Broker.ScalarAsync("SELECT SUM(count) FROM audit_events WHERE reason LIKE 'webhook:%'")).Should().Be(30);
        Broker.Logs.AllText.Should().NotContain(GitHub.WebhookSecret);
    }

    [Fact]
    public async Task A_revoked_authorization_reaches_the_instances_the_user_signed_in_to_through_the_app_only_and_ends_their_refreshes()
    {
        var revoking = GitHub.User;
        var (_, trackeepRefresh) = Tokens(await LoginAsync());
        GitHub.User = FakeGitHubUser.Random();
        var (_, legacyRefresh) = Tokens(await LoginAsync(LegacyCallback, "legacy-rsa"));
        using var client = Broker.CreateClient();
        using var delivery = GitHub.Delivery(WebhookEvents.AppAuthorization, FakeGitHub.AppAuthorizationRevoked(revoking), deliveryId: "d6b5a0e0-0001-4000-8000-000000000001");

        using var answer = await client.SendAsync(delivery);

        answer.StatusCode.Should().Be(HttpStatusCode.OK, await answer.Content.ReadAsStringAsync());
        (await answer.Content.ReadFromJsonAsync<JsonObject>())!["relayed"]!.GetValue<int>().Should().Be(1);
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(!trackeep.Received.IsEmpty))).Should().BeTrue();
        var received = trackeep.Received.Single();
        received.ContentType.Should().Be("application/jose");
        var jws = await VerifiedAsync(received.Body, "trackeep-home", WebhookRelay.TokenType);
        jws.Id.Should().Be("d6b5a0e0-0001-4000-8000-000000000001");
        jws.GetPayloadValue<string>("event").Should().Be(WebhookEvents.AppAuthorization);
        ((long)JsonNode.Parse(jws.GetPayloadValue<System.Text.Json.JsonElement>("payload").GetRawText())!["sender"]!["id"]!).Should().Be(revoking.Id);
        legacy.Received.Should().BeEmpty("the revoking user never signed in to legacy-rsa");

        (await Broker.ScalarAsync($"SELECT COUNT(*) FROM users WHERE revoked_at IS NOT NULL AND github_id = {revoking.Id}")).Should().Be(1);
        (await Broker.ScalarAsync($"SELECT COUNT(*) FROM user_instances WHERE user_id = (SELECT id FROM users WHERE github_id = {revoking.Id})")).Should()
            .Be(0, "none of the app's tokens lives, so none counts towards GitHub's ten");
        (await Broker.ScalarAsync($"SELECT COUNT(*) FROM user_instances WHERE user_id = (SELECT id FROM users WHERE github_id = {GitHub.User.Id})")).Should().Be(1);
        using var refused = await RefreshAsync(trackeepRefresh, "trackeep-home", TrackeepSecret);
        refused.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        ((string?)(await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_grant");
        GitHub.RefreshCallCount.Should().Be(0, "the broker does not ask GitHub about a revoked authorization");
        using var other = await RefreshAsync(legacyRefresh, "legacy-rsa", LegacySecret);
        other.StatusCode.Should().Be(HttpStatusCode.OK, "another user's tokens are untouched");
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE kind = 'webhook' AND action = 'app_authorization_revoked'")).Should().Be(1);
    }

    [Fact]
    public async Task A_delivery_seen_before_is_acknowledged_and_not_processed_again()
    {
        await OwnAsync(77, "legacy-rsa");
        using var client = Broker.CreateClient();
        var payload = FakeGitHub.InstallationEvent("suspend", 77, "octo-org", GitHub.User);

        using var first = await client.SendAsync(GitHub.Delivery(WebhookEvents.Installation, payload, deliveryId: "a1"));
        using var again = await client.SendAsync(GitHub.Delivery(WebhookEvents.Installation, payload, deliveryId: "a1"));

        ((string?)(await first.Content.ReadFromJsonAsync<JsonObject>())!["status"]).Should().Be("accepted");
        ((string?)(await again.Content.ReadFromJsonAsync<JsonObject>())!["status"]).Should().Be("duplicate");
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM webhook_outbox")).Should().Be(1);
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE kind = 'webhook'")).Should().Be(1);
    }

    [Fact]
    public async Task Installation_events_go_to_the_instance_that_owns_the_installation_in_order_through_a_failed_attempt()
    {
        await OwnAsync(77, "legacy-rsa");
        legacy.Status = attempt => attempt == 1 ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
        using var client = Broker.CreateClient();
        var sent = new[] { ("installation", "suspend", "e-1"), ("installation_repositories", "added", "e-2"), ("installation", "deleted", "e-3") };
        foreach (var (eventName, action, id) in sent)
        {
            using var delivered = await client.SendAsync(GitHub.Delivery(eventName, FakeGitHub.InstallationEvent(action, 77, "octo-org", GitHub.User), deliveryId: id));
            delivered.StatusCode.Should().Be(HttpStatusCode.OK);
        }

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(legacy.Received.Count == 3))).Should().BeTrue();
        legacy.Received.Select(received => received.Delivery).Should().Equal(["e-1", "e-2", "e-3"], "the first failed once, and the others waited for it");
        legacy.Attempts.Should().Be(4);
        trackeep.Received.Should().BeEmpty("installation 77 is legacy-rsa's");
        (await Broker.Services.GetRequiredService<IWebhookStore>().FindInstallationStatusAsync(77, CancellationToken.None)).Should().Be("deleted");
        foreach (var received in legacy.Received)
        {
            (await VerifiedAsync(received.Body, "legacy-rsa", WebhookRelay.TokenType)).GetPayloadValue<string>("event").Should().Be(received.Event);
        }
    }

    [Fact]
    public async Task An_event_no_instance_accepts_is_dead_lettered_shown_to_admins_and_redelivered_on_request()
    {
        await Broker.DisposeAsync();
        Broker = NewBroker(new() { ["Webhooks:RetryFor"] = "00:00:01" });
        await OwnAsync(78, "trackeep-home");
        trackeep.Status = _ => StatusCodes.Status500InternalServerError;
        using var client = Broker.CreateClient();
        (await client.SendAsync(GitHub.Delivery(WebhookEvents.Installation, FakeGitHub.InstallationEvent("suspend", 78, "octo-org", GitHub.User), deliveryId: "dead-1"))).StatusCode.Should().Be(HttpStatusCode.OK);

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), async () => (await AdminListAsync())["dead"]!.AsArray().Count == 1)).Should().BeTrue();
        var dead = (await AdminListAsync())["dead"]![0]!;
        ((string?)dead["last_error"]).Should().Be("HTTP 500");
        ((string?)dead["instance"]).Should().Be("trackeep-home");
        trackeep.Attempts.Should().BeGreaterThan(1, "it was retried before it was given up");

        using (var page = new HttpRequestMessage(HttpMethod.Get, "/admin/webhooks"))
        {
            page.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiToken);
            using var shown = await client.SendAsync(page);
            shown.StatusCode.Should().Be(HttpStatusCode.OK);
            (await shown.Content.ReadAsStringAsync()).Should().Contain("id=\"dead-letters\"").And.Contain("dead-1").And.Contain("HTTP 500").And.Contain("Redeliver");
        }

        trackeep.Status = _ => StatusCodes.Status200OK;
        using var redeliver = new HttpRequestMessage(HttpMethod.Post, $"/admin/api/webhooks/{(long)dead["id"]!}/redeliver");
        redeliver.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiToken);
        (await client.SendAsync(redeliver)).StatusCode.Should().Be(HttpStatusCode.OK);

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(trackeep.Received.Count == 1))).Should().BeTrue();
        (await AdminListAsync())["dead"]!.AsArray().Should().BeEmpty();
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE kind = 'admin' AND action = 'webhook_redeliver'")).Should().Be(1);
    }

    [Fact]
    public async Task A_slow_instance_does_not_delay_another()
    {
        await OwnAsync(80, "trackeep-home");
        await OwnAsync(81, "legacy-rsa");
        trackeep.Hold();
        using var client = Broker.CreateClient();
        (await client.SendAsync(GitHub.Delivery(WebhookEvents.Installation, FakeGitHub.InstallationEvent("suspend", 80, "slow-org", GitHub.User)))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(trackeep.Attempts == 1))).Should().BeTrue();

        (await client.SendAsync(GitHub.Delivery(WebhookEvents.Installation, FakeGitHub.InstallationEvent("suspend", 81, "fast-org", GitHub.User)))).StatusCode.Should().Be(HttpStatusCode.OK);

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(legacy.Received.Count == 1))).Should().BeTrue("legacy-rsa's event goes while trackeep-home's is still unanswered");
        trackeep.Received.Should().BeEmpty();
        trackeep.Release();
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(trackeep.Received.Count == 1))).Should().BeTrue();
    }

    private BrokerFactory NewBroker(Dictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Admin:ApiToken"] = ApiToken,
            ["Webhooks:PollInterval"] = "00:00:00.050",
            ["Webhooks:FirstRetryDelay"] = "00:00:00.100",
            ["Webhooks:DeliveryTimeout"] = "00:00:30",
        };
        foreach (var (key, value) in more ?? [])
        {
            settings[key] = value;
        }

        return new BrokerFactory(GitHub, Folder, Allowlist(), settings);
    }

    /// <summary>trackeep-home and legacy-rsa on the GitHub App, each with a webhook URL; direct-app on it without one.</summary>
    private string Allowlist()
    {
        var document = JsonNode.Parse(Instances.Json)!;
        foreach (var entry in document["instances"]!.AsArray().OfType<JsonObject>())
        {
            var id = (string?)entry["id"];
            if (id is "trackeep-home" or "legacy-rsa" or "direct-app")
            {
                entry["provider"] = "github-app";
                entry.Remove("scopes");
            }

            if (id is "trackeep-home" or "legacy-rsa")
            {
                entry["refresh"] = true;
                entry["clientSecret"] = SecretEntry(id == "trackeep-home" ? TrackeepSecret : LegacySecret);
                entry["webhookUrl"] = id == "trackeep-home" ? trackeep.Url : legacy.Url;
            }
        }

        return document.ToJsonString();
    }

    // What the install relay records at its callback.
    private Task OwnAsync(long installationId, string instanceId) =>
        Broker.Services.GetRequiredService<IWebhookStore>().RecordInstallationAsync(installationId, instanceId, null, "octo-org", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), CancellationToken.None);

    private async Task<JsonObject> AdminListAsync()
    {
        using var client = Broker.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/api/webhooks");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ApiToken);
        using var response = await client.SendAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    private static HttpRequestMessage Raw(string body, string signature)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/github") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-GitHub-Event", "push");
        request.Headers.Add("X-GitHub-Delivery", Guid.NewGuid().ToString());
        request.Headers.Add(WebhookSignature.Header, signature);
        return request;
    }
}
