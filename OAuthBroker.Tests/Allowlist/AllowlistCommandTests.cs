using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Allowlist;

public sealed class AllowlistCommandTests : FakeGitHubTest
{
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        broker = new BrokerFactory(GitHub, Folder, Instances.Json);
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task List_shows_every_instance_and_its_redirect_uris()
    {
        var result = await AdminCli.RunAsync(broker, "allowlist", "list");

        result.ExitCode.Should().Be(0);
        result.Output.Should().Contain("trackeep-home  token: RSA-OAEP-256").And.Contain("    https://*.tenants.example.net/auth/callback").And.Contain("login-only  token: none (identity only)").And.Contain("6 instances");
    }

    [Fact]
    public async Task Add_with_a_JWK_key_file_keeps_every_other_entry_as_it_was()
    {
        var before = await EntriesAsync();
        var keyFile = WriteKeyFile(JsonSerializer.Serialize(InstanceKey.Ec().PublicJwk));

        var result = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "cli-added", "--redirect", "https://cli.example.com/auth/callback", "--redirect", "https://cli.example.com/alt", "--scopes", "read:user", "repo", "--key-file", keyFile);

        result.ExitCode.Should().Be(0, result.Error);
        var after = await EntriesAsync();
        after.Should().HaveCount(before.Count + 1);
        foreach (var (id, entry) in before)
        {
            JsonNode.DeepEquals(after[id], entry).Should().BeTrue($"{id} must be kept as it was");
        }

        after["cli-added"]["redirectUris"]!.AsArray().Select(node => (string?)node).Should().Equal("https://cli.example.com/auth/callback", "https://cli.example.com/alt");
        after["cli-added"]["scopes"]!.AsArray().Select(node => (string?)node).Should().Equal("read:user", "repo");
        ((string?)after["cli-added"]["encryptionKey"]!["kty"]).Should().Be("EC");
    }

    [Fact]
    public async Task Add_accepts_a_PEM_public_key()
    {
        using var rsa = RSA.Create(2048);
        var keyFile = WriteKeyFile(rsa.ExportSubjectPublicKeyInfoPem());

        var result = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "pem-instance", "--redirect", "https://pem.example.com/cb", "--key-file", keyFile, "--alg", "RSA-OAEP");

        result.ExitCode.Should().Be(0, result.Error);
        ((string?)(await EntriesAsync())["pem-instance"]["encryptionKey"]!["alg"]).Should().Be("RSA-OAEP");
    }

    [Fact]
    public async Task Add_refuses_a_PEM_private_key()
    {
        using var rsa = RSA.Create(2048);
        var before = File.ReadAllBytes(broker.AllowlistPath);

        var result = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "leaky", "--redirect", "https://leaky.example.com/cb", "--key-file", WriteKeyFile(rsa.ExportPkcs8PrivateKeyPem()));

        result.ExitCode.Should().Be(1);
        result.Error.Should().Contain("private key");
        File.ReadAllBytes(broker.AllowlistPath).Should().Equal(before);
    }

    [Fact]
    public async Task Generate_secret_prints_a_256_bit_key_once_and_stores_it()
    {
        var result = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "shared", "--redirect", "https://shared.example.com/cb", "--generate-secret");

        result.ExitCode.Should().Be(0, result.Error);
        var printed = JsonNode.Parse(result.Output.Trim().Split('\n').Last())!;
        ((string?)printed["kty"]).Should().Be("oct");
        Jose.Base64Url.Decode((string)printed["k"]!).Should().HaveCount(32);
        ((string?)(await EntriesAsync())["shared"]["encryptionKey"]!["k"]).Should().Be((string?)printed["k"]);
    }

    [Fact]
    public async Task A_public_OpenID_Connect_client_with_its_post_logout_redirect_uris_is_added_and_a_bad_one_refused()
    {
        var result = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "spa", "--redirect", "https://spa.example.com/cb", "--identity-only", "--public",
            "--post-logout-redirect", "https://spa.example.com/bye", "--post-logout-redirect", "https://spa.example.com/again");

        result.ExitCode.Should().Be(0, result.Error);
        var entry = (await EntriesAsync())["spa"];
        ((bool?)entry["public"]).Should().BeTrue();
        entry["postLogoutRedirectUris"]!.AsArray().Select(uri => (string?)uri).Should().Equal("https://spa.example.com/bye", "https://spa.example.com/again");
        var refused = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "spa-2", "--redirect", "https://spa2.example.com/cb", "--identity-only", "--post-logout-redirect", "http://spa2.example.com/bye");
        refused.ExitCode.Should().NotBe(0);
        refused.Error.Should().Contain("postLogoutRedirectUris[0]");
    }

    [Fact]
    public async Task A_GitHub_App_entry_with_a_webhook_url_and_events_is_added_and_a_webhook_on_an_OAuth_App_entry_refused()
    {
        var result = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "hooked", "--redirect", "https://hooked.example.com/cb", "--identity-only", "--provider", "github-app",
            "--webhook-url", "https://hooked.example.com/github-events", "--webhook-event", "installation", "--webhook-event", "installation_repositories");

        result.ExitCode.Should().Be(0, result.Error);
        var entry = (await EntriesAsync())["hooked"];
        ((string?)entry["webhookUrl"]).Should().Be("https://hooked.example.com/github-events");
        entry["webhookEvents"]!.AsArray().Select(name => (string?)name).Should().Equal("installation", "installation_repositories");
        var refused = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "hooked-2", "--redirect", "https://hooked2.example.com/cb", "--identity-only",
            "--webhook-url", "https://hooked2.example.com/github-events");
        refused.ExitCode.Should().NotBe(0);
        refused.Error.Should().Contain("webhookUrl");
        var unknownEvent = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "hooked-3", "--redirect", "https://hooked3.example.com/cb", "--identity-only", "--provider", "github-app",
            "--webhook-url", "http://hooked3.example.com/plain", "--webhook-event", "push");
        unknownEvent.ExitCode.Should().NotBe(0);
        unknownEvent.Error.Should().Contain("webhookUrl").And.Contain("webhookEvents");
    }

    [Fact]
    public async Task Identity_only_instance_needs_no_key()
    {
        var result = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "who-am-i", "--redirect", "https://who.example.com/cb", "--identity-only");

        result.ExitCode.Should().Be(0, result.Error);
        ((bool?)(await EntriesAsync())["who-am-i"]["deliverAccessToken"]).Should().BeFalse();
    }

    [Theory]
    [Trait(StoredIn.Trait, StoredIn.File)]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite)]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead)]
    public async Task An_edit_keeps_the_file_mode_the_operator_set(UnixFileMode mode)
    {
        File.SetUnixFileMode(broker.AllowlistPath, mode);

        var result = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "lab", "--redirect", "https://lab.example.org/cb", "--generate-secret");

        result.ExitCode.Should().Be(0, result.Error);
        File.ReadAllText(broker.AllowlistPath).Should().Contain("\"lab\"");
        File.GetUnixFileMode(broker.AllowlistPath).Should().Be(mode, "the file holds a shared secret now");
    }

    [Fact]
    public async Task Added_instances_require_state_unless_told_otherwise()
    {
        var strict = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "strict", "--redirect", "https://strict.example.com/cb", "--identity-only");
        var lenient = await AdminCli.RunAsync(broker, "allowlist", "add", "--id", "lenient", "--redirect", "https://lenient.example.com/cb", "--identity-only", "--state-optional");

        strict.ExitCode.Should().Be(0, strict.Error);
        lenient.ExitCode.Should().Be(0, lenient.Error);
        ((bool?)(await EntriesAsync())["strict"]["requireState"]).Should().BeTrue();
        ((bool?)(await EntriesAsync())["lenient"]["requireState"]).Should().BeFalse();
    }

    [Theory]
    [InlineData("--id", "bad", "--redirect", "http://bad.example.com/cb", "--identity-only")]
    [InlineData("--id", "trackeep-home", "--redirect", "https://other.example.com/cb", "--identity-only")]
    [InlineData("--id", "dup-uri", "--redirect", "https://trackeep.example.com/auth/callback", "--identity-only")]
    [InlineData("--id", "wild", "--redirect", "https://*.com/cb", "--identity-only")]
    [InlineData("--id", "two-keys", "--redirect", "https://two.example.com/cb", "--identity-only", "--generate-secret")]
    [InlineData("--id", "no-key", "--redirect", "https://none.example.com/cb")]
    [InlineData("--redirect", "https://noid.example.com/cb", "--identity-only")]
    public async Task Invalid_add_is_refused_with_a_non_zero_exit_and_the_allowlist_unchanged(params string[] options)
    {
        var before = await broker.ReadStoredAllowlistAsync();

        var result = await AdminCli.RunAsync(broker, ["allowlist", "add", .. options]);

        result.ExitCode.Should().NotBe(0);
        (result.Output + result.Error).Should().NotBeEmpty();
        (await broker.ReadStoredAllowlistAsync()).Should().Be(before);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Export_writes_the_allowlist_for_its_owner_only_and_import_replaces_it_whole()
    {
        var exported = Path.Combine(Folder.Path, "backup.json");

        var export = await AdminCli.RunAsync(broker, "allowlist", "export", exported);

        export.ExitCode.Should().Be(0, export.Error);
        File.GetUnixFileMode(exported).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite, "it may hold instances' shared secrets");
        (await File.ReadAllTextAsync(exported)).Should().Be(await broker.ReadStoredAllowlistAsync());
        var replacement = new AllowlistBuilder().Add("only-one", ["https://only.example.com/cb"], InstanceKey.Oct()).ToJson();
        await File.WriteAllTextAsync(exported, replacement);

        var import = await AdminCli.RunAsync(broker, "allowlist", "import", exported);

        import.ExitCode.Should().Be(0, import.Error);
        (await EntriesAsync()).Keys.Should().Equal("only-one");
        (await broker.ReadStoredAllowlistAsync()).Should().Be(replacement, "the document is kept byte for byte");
        using var browser = broker.NewBrowser();
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () => (await browser.StartAsync(StandardInstances.TrackeepCallback)).StatusCode == HttpStatusCode.BadRequest))
            .Should().BeTrue("the running broker serves the imported allowlist");
    }

    [Theory]
    [InlineData("{ \"instances\": [ ", "not valid allowlist JSON")]
    [InlineData("""{ "instances": [ { "id": "x", "redirectUris": ["https://x.example.com/cb"], "deliverAccessToken": false }, { "id": "X", "redirectUris": ["https://y.example.com/cb"], "deliverAccessToken": false } ] }""", "used more than once")]
    [InlineData("""{ "instances": [ { "id": "x", "redirectUris": ["https://x.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "AAAA" } } ] }""", "exactly 256 bits")]
    public async Task Import_of_an_invalid_file_exits_1_names_the_problem_and_changes_nothing(string content, string problem)
    {
        var before = await broker.ReadStoredAllowlistAsync();
        var candidate = Path.Combine(Folder.Path, "candidate.json");
        await File.WriteAllTextAsync(candidate, content);

        var import = await AdminCli.RunAsync(broker, "allowlist", "import", candidate);

        import.ExitCode.Should().Be(1);
        import.Error.Should().Contain("the allowlist was not changed").And.Contain(problem);
        (await broker.ReadStoredAllowlistAsync()).Should().Be(before);
    }

    [Fact]
    public async Task Remove_deletes_one_instance_and_unknown_ids_exit_non_zero()
    {
        (await AdminCli.RunAsync(broker, "allowlist", "remove", "legacy-rsa")).ExitCode.Should().Be(0);
        (await EntriesAsync()).Should().NotContainKey("legacy-rsa").And.ContainKey("trackeep-home");

        var again = await AdminCli.RunAsync(broker, "allowlist", "remove", "legacy-rsa");
        again.ExitCode.Should().Be(1);
        again.Error.Should().Contain("No instance 'legacy-rsa'");
    }

    [Fact]
    public async Task Validate_checks_the_configured_file_or_a_given_one()
    {
        (await AdminCli.RunAsync(broker, "allowlist", "validate")).Output.Should().Contain("Valid: 6 instances");
        var bad = Path.Combine(Folder.Path, "candidate.json");
        File.WriteAllText(bad, """{ "instances": [ { "id": "x", "redirectUris": ["https://x.example.com/cb?next=1"], "deliverAccessToken": false } ] }""");

        var result = await AdminCli.RunAsync(broker, "allowlist", "validate", bad);

        result.ExitCode.Should().Be(1);
        result.Error.Should().Contain("instances[0] (\"x\"): redirectUris[0] has a query");
    }

    [Theory]
    [InlineData("https://acme.tenants.example.net/auth/callback", "Accepted for instance 'tenants' by entry https://*.tenants.example.net/auth/callback (wildcard host (one label))")]
    [InlineData("http://127.0.0.1:8080/callback", "loopback, any port")]
    [InlineData("https://trackeep.example.com", "Trackeep base URL")]
    [InlineData("https://trackeep.example.com/auth/callback", "exact match")]
    public async Task Check_names_the_instance_entry_and_rule_that_accept_a_uri(string uri, string expected)
    {
        var result = await AdminCli.RunAsync(broker, "allowlist", "check", uri);

        result.ExitCode.Should().Be(0);
        result.Output.Should().Contain(expected);
    }

    [Fact]
    public async Task Check_of_a_refused_uri_exits_1_and_says_why_and_what_is_registered_on_that_host()
    {
        var result = await AdminCli.RunAsync(broker, "allowlist", "check", "https://trackeep.example.com/auth/callback/");

        result.ExitCode.Should().Be(1);
        result.Output.Should().Contain("Refused: redirect_uri is not registered for any instance.")
            .And.Contain("Entry https://trackeep.example.com/auth/callback of 'trackeep-home' is on this host");
    }

    [Fact]
    public async Task The_real_executable_exits_0_or_1_like_a_Unix_tool()
    {
        var accepted = await AdminCli.RunProcessAsync(broker, "allowlist", "check", "https://direct.example.org/cb");
        var refused = await AdminCli.RunProcessAsync(broker, "allowlist", "check", "https://evil.example.com/cb");
        var usage = await AdminCli.RunProcessAsync(broker, "allowlist", "add", "--nonsense");

        accepted.ExitCode.Should().Be(0, accepted.Error);
        refused.ExitCode.Should().Be(1);
        usage.ExitCode.Should().NotBe(0);
    }

    [Fact]
    public async Task The_native_executable_edits_the_same_files_and_its_edits_reach_the_running_broker()
    {
        File.Exists(NativeBroker.ExecutablePath).Should().BeTrue("scripts/test.sh publishes the native broker before the tests");
        using var rsa = RSA.Create(2048);
        // Starts the running broker, which creates its signing key.
        var kid = new Microsoft.IdentityModel.Tokens.JsonWebKeySet(await broker.CreateClient().GetStringAsync("/.well-known/jwks.json")).Keys.Single().Kid;

        var pem = await AdminCli.RunNativeAsync(broker, "allowlist", "add", "--id", "native-pem", "--redirect", "https://native.example.com/cb", "--key-file", WriteKeyFile(rsa.ExportSubjectPublicKeyInfoPem()));
        var shared = await AdminCli.RunNativeAsync(broker, "allowlist", "add", "--id", "native-shared", "--redirect", "https://shared-native.example.com/cb", "--generate-secret");
        var check = await AdminCli.RunNativeAsync(broker, "allowlist", "check", "https://native.example.com/cb");
        var refused = await AdminCli.RunNativeAsync(broker, "allowlist", "check", "https://evil.example.com/cb");
        var keys = await AdminCli.RunNativeAsync(broker, "keys", "list");

        pem.ExitCode.Should().Be(0, pem.Error);
        ((string?)(await EntriesAsync())["native-pem"]["encryptionKey"]!["kty"]).Should().Be("RSA");
        ((string?)(await EntriesAsync())["native-pem"]["encryptionKey"]!["n"]).Should().Be(Jose.Base64Url.Encode(rsa.ExportParameters(false).Modulus!));
        shared.ExitCode.Should().Be(0, shared.Error);
        ((string?)(await EntriesAsync())["native-shared"]["encryptionKey"]!["kty"]).Should().Be("oct");
        check.ExitCode.Should().Be(0, check.Error);
        refused.ExitCode.Should().Be(1);
        keys.ExitCode.Should().Be(0, keys.Error);
        keys.Output.Should().Contain(kid, "the native executable reads the key the running broker stored");

        using var browser = broker.NewBrowser();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while ((await browser.StartAsync("https://native.example.com/cb")).StatusCode != HttpStatusCode.Redirect && DateTime.UtcNow < deadline)
        {
            await Task.Delay(25);
        }

        (await browser.LoginAsync("https://native.example.com/cb")).Query.Should().ContainKey("token");
    }

    [Fact]
    public async Task A_CLI_edit_reaches_the_running_broker_without_a_restart()
    {
        using var browser = broker.NewBrowser();
        (await browser.StartAsync("https://late.example.com/cb")).StatusCode.Should().Be(HttpStatusCode.BadRequest);

        var result = await AdminCli.RunProcessAsync(broker, "allowlist", "add", "--id", "late", "--redirect", "https://late.example.com/cb", "--identity-only");

        result.ExitCode.Should().Be(0, result.Error);
        var deadline = DateTime.UtcNow.AddSeconds(2);
        HttpStatusCode status;
        do
        {
            await Task.Delay(25);
            status = (await browser.StartAsync("https://late.example.com/cb")).StatusCode;
        }
        while (status != HttpStatusCode.Redirect && DateTime.UtcNow < deadline);

        status.Should().Be(HttpStatusCode.Redirect);
        (await browser.LoginAsync("https://late.example.com/cb")).Query.Should().ContainKey("token");
    }

    [Fact]
    public async Task Concurrent_edits_all_land_and_a_reader_never_sees_a_torn_file()
    {
        var torn = 0;
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var bytes = File.ReadAllBytes(broker.AllowlistPath);
                if (OAuthBroker.Allowlist.AllowlistFile.Validate(bytes, ["read:user"]).Count > 0)
                {
                    Interlocked.Increment(ref torn);
                }
            }
        });

        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(i =>
            Task.Run(() => AdminCli.RunAsync(broker, "allowlist", "add", "--id", $"parallel-{i}", "--redirect", $"https://p{i}.example.com/cb", "--identity-only"))));
        await stop.CancelAsync();
        await reader;

        results.Should().OnlyContain(result => result.ExitCode == 0);
        (await EntriesAsync()).Keys.Where(id => id.StartsWith("parallel-", StringComparison.Ordinal)).Should().HaveCount(12);
        torn.Should().Be(0);
    }

    private async Task<Dictionary<string, JsonNode>> EntriesAsync() =>
        JsonNode.Parse(await broker.ReadStoredAllowlistAsync(), documentOptions: new() { CommentHandling = JsonCommentHandling.Skip })!["instances"]!.AsArray()
            .ToDictionary(node => (string)node!["id"]!, node => node!);

    private string WriteKeyFile(string content)
    {
        var path = Path.Combine(Folder.Path, $"key-{Guid.NewGuid():N}");
        File.WriteAllText(path, content);
        return path;
    }
}
