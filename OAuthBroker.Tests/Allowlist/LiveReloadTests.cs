using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Allowlist;

public sealed class LiveReloadTests : FakeGitHubTest
{
    private const string NewCallback = "https://new-instance.example.com/auth/callback";

    [Fact]
    public async Task An_added_instance_can_log_in_within_two_seconds_without_a_restart()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using var browser = broker.NewBrowser();
        (await browser.StartAsync(NewCallback)).StatusCode.Should().Be(HttpStatusCode.BadRequest);

        await broker.ReplaceAllowlistAsync(WithNewInstance());
        var accepted = await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () => (await browser.StartAsync(NewCallback)).StatusCode == HttpStatusCode.Redirect);

        accepted.Should().BeTrue("the edit must take effect within 2 seconds");
        (await browser.LoginAsync(NewCallback)).Query.Should().ContainKey("token");
    }

    [Fact]
    [Trait(StoredIn.Trait, StoredIn.File)]
    public async Task An_edit_written_in_place_is_picked_up_by_hash_polling_when_file_events_are_off()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Broker:WatchAllowlist"] = "false" }, clock);
        using var browser = broker.NewBrowser();
        _ = broker.Server;

        File.WriteAllText(broker.AllowlistPath, WithNewInstance());
        (await browser.StartAsync(NewCallback)).StatusCode.Should().Be(HttpStatusCode.BadRequest, "nothing polled yet");
        var accepted = await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () =>
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            return (await browser.StartAsync(NewCallback)).StatusCode == HttpStatusCode.Redirect;
        });

        accepted.Should().BeTrue();
    }

    [Theory]
    [Trait(StoredIn.Trait, StoredIn.File)]
    [InlineData("{ \"instances\": [ ", "not valid allowlist JSON")]
    [InlineData("""{ "instances": [ { "id": "x", "redirectUris": ["http://x.example.com/cb"], "deliverAccessToken": false } ] }""", "redirectUris[0] must use https")]
    [InlineData("""{ "instances": [ { "id": "x", "redirectUris": ["https://a.*.example.com/cb"], "deliverAccessToken": false } ] }""", "'*' other than")]
    [InlineData("""{ "instances": [ { "id": "x", "redirectUris": ["https://x.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "AAAA" } } ] }""", "exactly 256 bits")]
    [InlineData("""{ "instances": [ { "id": "x", "redirectUris": ["https://x.example.com/cb"], "deliverAccessToken": false }, { "id": "x", "redirectUris": ["https://y.example.com/cb"], "deliverAccessToken": false } ] }""", "used more than once")]
    public async Task An_invalid_edit_is_refused_whole_and_the_last_good_allowlist_keeps_serving(string badFile, string reason)
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, AdminToken);
        using var browser = broker.NewBrowser();
        var goodSha = (await ReadyAsync(broker)).GetProperty("sha256").GetString();

        File.WriteAllText(broker.AllowlistPath, badFile);
        var stale = await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () => (await ReadyAsync(broker)).GetProperty("stale").GetBoolean());

        stale.Should().BeTrue();
        var check = await ReadyAsync(broker);
        check.GetProperty("error").GetString().Should().Contain(reason);
        check.GetProperty("sha256").GetString().Should().Be(goodSha);
        check.GetProperty("errorAt").GetDateTimeOffset().Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1));
        (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token", "the last good list still serves");
        broker.Logs.Lines.Should().Contain(line => line.EventId == 1003 && line.Message.Contains(reason, StringComparison.Ordinal));

        File.WriteAllText(broker.AllowlistPath, Instances.Json);
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () => !(await ReadyAsync(broker)).GetProperty("stale").GetBoolean())).Should().BeTrue();
    }

    [Fact]
    public async Task A_login_in_flight_when_its_instance_is_removed_is_refused_at_the_callback()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);

        await broker.ReplaceAllowlistAsync(new AllowlistBuilder().Add("direct-app", ["https://direct.example.org/cb"], Instances.Direct).ToJson());
        // Another browser asks until the list has changed: every start accepted before then sets a cookie, and the
        // in-flight login's own browser keeps 20 per site (CookieContainer), so it would lose that login's binding.
        using var prober = broker.NewBrowser();
        await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () => (await prober.StartAsync(StandardInstances.TrackeepCallback)).StatusCode == HttpStatusCode.BadRequest);
        var outcome = await browser.ReturnFromGitHubAsync(callback);

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        outcome.Location.Should().BeNull();
        (await outcome.Response.Content.ReadAsStringAsync()).Should().Contain("no longer allowed");
        GitHub.TokenCallCount.Should().Be(0, "nothing is redeemed for an instance that is gone");
    }

    [Fact]
    public async Task A_login_in_flight_when_its_redirect_uri_moves_to_another_instance_is_refused()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, AdminToken);
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync("https://direct.example.org/cb");

        await broker.ReplaceAllowlistAsync(new AllowlistBuilder()
            .Add("trackeep-home", [StandardInstances.TrackeepCallback], Instances.Trackeep)
            .Add("takeover", ["https://direct.example.org/cb"], InstanceKey.Oct())
            .ToJson());
        await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () => (await ReadyAsync(broker)).GetProperty("detail").GetString()!.StartsWith("2 instances", StringComparison.Ordinal));
        var outcome = await browser.ReturnFromGitHubAsync(callback);

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    private string WithNewInstance() => new AllowlistBuilder()
        .Add("trackeep-home", [StandardInstances.TrackeepCallback], Instances.Trackeep)
        .Add("new-instance", [NewCallback], InstanceKey.Rsa())
        .ToJson();

    private const string ApiToken = "live-reload-admin-token-0123456789abcdef";

    private static Dictionary<string, string?> AdminToken => new() { ["Admin:ApiToken"] = ApiToken };

    /// <summary>The allowlist's check as admins see it (anonymous /readyz says only ready or not).</summary>
    private static async Task<JsonElement> ReadyAsync(BrokerFactory broker)
    {
        using var client = broker.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);
        using var document = JsonDocument.Parse(await client.GetStringAsync("/admin/api/health"));
        return document.RootElement.GetProperty("checks").EnumerateArray().Single(check => check.GetProperty("name").GetString() == "allowlist").Clone();
    }
}
