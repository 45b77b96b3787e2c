using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// What only the PostgreSQL backend has: the allowlist held in the database, seeded once from the file, encrypted at
/// rest, checked against its hash, and announced to every replica when it changes (with polling as the fallback).
/// </summary>
public sealed class PostgresAllowlistTests : FakeGitHubTest
{
    private const string ApiToken = "shared-allowlist-admin-token-0123456789abcdef";
    private const string NewCallback = "https://added-on-a.example.com/cb";

    private readonly string database = TestDatabase.NewPostgresDatabase();

    [Fact]
    public async Task The_first_start_seeds_the_database_from_the_file_and_later_starts_ignore_the_file()
    {
        await using (var first = Broker(Instances.Json))
        {
            using var browser = first.NewBrowser();
            (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token");
            first.Logs.Lines.Should().Contain(line => line.EventId == 1001 && line.Message.Contains("PostgreSQL", StringComparison.Ordinal));
        }

        // The file now names no Trackeep instance: a broker reading it would refuse the callback.
        await using var second = Broker(new AllowlistBuilder().Add("other", ["https://other.example.com/cb"], InstanceKey.Oct()).ToJson());
        using var again = second.NewBrowser();

        (await again.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token", "the database, not the file, holds the allowlist once seeded");
        (await again.StartAsync("https://other.example.com/cb")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task An_invalid_seed_file_stops_start_up_and_writes_no_allowlist()
    {
        await using var broker = Broker("""{ "instances": [ { "id": "x", "redirectUris": ["http://x.example.com/cb"], "deliverAccessToken": false } ] }""");

        StartupFailure.Of(broker).Should().Contain("cannot seed the allowlist in PostgreSQL").And.Contain("must use https");
        (await broker.ScalarAsync("SELECT COUNT(*) FROM allowlist")).Should().Be(0);
    }

    [Fact]
    public async Task The_document_is_encrypted_at_rest_and_its_hash_is_the_ETag()
    {
        await using var broker = Broker(Instances.Json);
        using var api = Api(broker);
        var etag = await ETagAsync(api);

        var document = (byte[])(await broker.ValueAsync("SELECT document FROM allowlist"))!;
        var text = Encoding.UTF8.GetString(document);
        text.Should().NotContain("trackeep-home").And.NotContain((string)Instances.Loopback.PublicJwk["k"], "instances' shared secrets are not kept in clear");
        var sha256 = (string)(await broker.ValueAsync("SELECT sha256 FROM allowlist"))!;
        etag.Should().Be($"\"{sha256}\"");
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(await broker.ReadStoredAllowlistAsync()))).Should().Be(sha256);
    }

    [Fact]
    public async Task An_instance_added_through_one_broker_is_served_by_another_within_two_seconds()
    {
        // Polling every minute (the longest allowed): only the notification can bring the change within two seconds.
        var slowPoll = new Dictionary<string, string?> { ["Broker:AllowlistPollInterval"] = "00:01:00" };
        await using var a = Broker(Instances.Json, slowPoll);
        await using var b = Broker(Instances.Json, slowPoll);
        using var onB = b.NewBrowser();
        (await onB.StartAsync(NewCallback)).StatusCode.Should().Be(HttpStatusCode.BadRequest);

        using var api = Api(a);
        using var created = await CreateAsync(api, NewCallback);

        created.StatusCode.Should().Be(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () => (await onB.StartAsync(NewCallback)).StatusCode == HttpStatusCode.Redirect))
            .Should().BeTrue("B applies A's edit when PostgreSQL announces it");
        (await onB.LoginAsync(NewCallback)).Query.Should().ContainKey("token");
    }

    [Fact]
    public async Task A_change_whose_notification_is_lost_is_picked_up_by_polling()
    {
        await using var broker = Broker(Instances.Json);
        using var browser = broker.NewBrowser();
        var seeded = await RowAsync(broker);
        using (var api = Api(broker))
        using (var created = await CreateAsync(api, NewCallback))
        {
            created.StatusCode.Should().Be(HttpStatusCode.Created);
        }

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () => (await browser.StartAsync(NewCallback)).StatusCode == HttpStatusCode.Redirect)).Should().BeTrue();

        // The seeded row put back by hand: a write that sent no NOTIFY.
        await using (var connection = new Npgsql.NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            await using var restore = new Npgsql.NpgsqlCommand("UPDATE allowlist SET sha256 = $1, document = $2", connection) { Parameters = { new() { Value = seeded.Sha256 }, new() { Value = seeded.Document } } };
            (await restore.ExecuteNonQueryAsync()).Should().Be(1);
        }

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () => (await browser.StartAsync(NewCallback)).StatusCode == HttpStatusCode.BadRequest))
            .Should().BeTrue("the hash is polled every Broker:AllowlistPollInterval (1 s)");
    }

    [Fact]
    public async Task A_row_that_does_not_match_its_hash_is_refused_and_the_last_good_allowlist_keeps_serving()
    {
        await using var broker = Broker(Instances.Json);
        using var browser = broker.NewBrowser();
        _ = broker.Server;

        await broker.ValueAsync("UPDATE allowlist SET sha256 = '0000000000000000000000000000000000000000000000000000000000000000'");

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), () => Task.FromResult(broker.Logs.Lines.Any(line => line.EventId == 1003)))).Should().BeTrue();
        broker.Logs.Lines.Should().Contain(line => line.EventId == 1003 && line.Message.Contains("does not match its recorded hash", StringComparison.Ordinal));
        (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token", "the last good allowlist still serves");
    }

    [Fact]
    public async Task Export_and_import_move_an_allowlist_from_a_file_broker_into_PostgreSQL()
    {
        var exported = Path.Combine(Folder.Path, "exported.json");
        var fileSettings = new Dictionary<string, string?> { ["Broker:Database"] = "sqlite" };
        await using (var onFile = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json, fileSettings))
        {
            (await AdminCli.RunAsync(onFile, "allowlist", "add", "--id", "moved", "--redirect", "https://moved.example.com/cb", "--identity-only")).ExitCode.Should().Be(0);
            var export = await AdminCli.RunAsync(onFile, "allowlist", "export", exported);
            export.ExitCode.Should().Be(0, export.Error);
        }

        await using var broker = Broker(Instances.Json);
        var import = await AdminCli.RunAsync(broker, "allowlist", "import", exported);

        import.ExitCode.Should().Be(0, import.Error);
        var list = await AdminCli.RunAsync(broker, "allowlist", "list");
        list.Output.Should().Contain("moved  token: none").And.Contain("7 instances");
        (await broker.ReadStoredAllowlistAsync()).Should().Be(await File.ReadAllTextAsync(exported), "an import keeps the document byte for byte");
    }

    [Fact]
    public async Task After_a_lost_key_ring_start_up_names_it_and_an_import_replaces_the_unreadable_allowlist()
    {
        await using (var first = Broker(Instances.Json))
        {
            _ = first.Server;
            await first.ValueAsync("DELETE FROM data_protection_keys");
        }

        await using var second = Broker(Instances.Json);
        StartupFailure.Of(second).Should().Contain("cannot be decrypted: the Data Protection key ring");
        var replacement = Path.Combine(Folder.Path, "replacement.json");
        await File.WriteAllTextAsync(replacement, new AllowlistBuilder().Add("fresh", ["https://fresh.example.com/cb"], InstanceKey.Oct()).ToJson());

        var import = await AdminCli.RunAsync(second, "allowlist", "import", replacement);

        import.ExitCode.Should().Be(0, import.Error);
        (await AdminCli.RunAsync(second, "allowlist", "list")).Output.Should().Contain("fresh").And.Contain("1 instances");
    }

    private BrokerFactory Broker(string allowlistJson, Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Broker:Database"] = "postgres",
            ["ConnectionStrings:Broker"] = database,
            ["Admin:ApiToken"] = ApiToken,
        };
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }

        // A folder each, as replicas on two machines have: the database is all they share.
        return new BrokerFactory(GitHub, new TempDirectory(), allowlistJson, settings);
    }

    private static HttpClient Api(BrokerFactory broker)
    {
        var client = broker.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);
        return client;
    }

    private static async Task<string> ETagAsync(HttpClient api)
    {
        using var response = await api.GetAsync("/admin/api/instances");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return response.Headers.ETag!.Tag;
    }

    private static async Task<HttpResponseMessage> CreateAsync(HttpClient api, string callback)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/api/instances")
        {
            Content = new StringContent(new JsonObject
            {
                ["id"] = "added-on-a",
                ["redirectUris"] = new JsonArray(callback),
                ["encryptionKey"] = JsonSerializer.SerializeToNode(InstanceKey.Oct().PublicJwk),
            }.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("If-Match", await ETagAsync(api));
        return await api.SendAsync(request);
    }

    private static async Task<(string Sha256, byte[] Document)> RowAsync(BrokerFactory broker) =>
        ((string)(await broker.ValueAsync("SELECT sha256 FROM allowlist"))!, (byte[])(await broker.ValueAsync("SELECT document FROM allowlist"))!);
}
