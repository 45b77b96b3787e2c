using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Security;

/// <summary>
/// Runs successful and failing logins, then looks for every token, refresh token and client secret the fake GitHub
/// handed out in the broker's log output and in every file under Broker:DataPath (database, WAL, key ring).
/// </summary>
public sealed class SecretLeakTests : FakeGitHubTest
{
    [Fact]
    public async Task No_GitHub_token_refresh_token_or_client_secret_is_logged_or_stored_in_plain_text()
    {
        string logs;
        // The tenants sign in through the GitHub App, whose tokens (ghu_) expire and come with refresh tokens.
        var allowlist = System.Text.Json.Nodes.JsonNode.Parse(Instances.Json)!;
        var tenants = allowlist["instances"]!.AsArray().Single(entry => (string?)entry!["id"] == "tenants")!.AsObject();
        tenants["provider"] = "github-app";
        tenants.Remove("scopes");
        await using (var broker = new BrokerFactory(GitHub, Folder, allowlist.ToJsonString()))
        {
            using var browser = broker.NewBrowser();
            foreach (var redirectUri in new[] { StandardInstances.TrackeepCallback, "https://a.tenants.example.net/auth/callback", "http://127.0.0.1:9/callback", "https://direct.example.org/cb", "https://login-only.example.org/signed-in" })
            {
                (await browser.LoginAsync(redirectUri)).Query.Should().ContainKey("token");
            }

            GitHub.ExpiringTokens = true;
            (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token");
            GitHub.UserFault = UserFault.Unauthorized;
            (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("error");
            GitHub.UserFault = UserFault.None;
            GitHub.TokenFault = TokenFault.ErrorField;
            (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("error");
            logs = broker.Logs.AllText;
        }

        var secrets = GitHub.Secrets.ToList();
        secrets.Should().Contain(secret => secret.StartsWith("gho_", StringComparison.Ordinal))
            .And.Contain(secret => secret.StartsWith("ghu_", StringComparison.Ordinal))
            .And.Contain(secret => secret.StartsWith("ghr_", StringComparison.Ordinal))
            .And.Contain(GitHub.ClientSecret)
            .And.Contain(GitHub.AppClientSecret);
        logs.Should().Contain("Login completed", "the scan must look at real log output");

        if (TestDatabase.IsPostgres)
        {
            SecretScan.AssertAbsent(secrets, logs, Path.Combine(Folder.Path, "data"), TestDatabase.PostgresDatabaseFor(Folder.Path));
        }
        else
        {
            Directory.EnumerateFiles(Path.Combine(Folder.Path, "data"), "*", SearchOption.AllDirectories).Should().Contain(file => file.EndsWith("broker.db", StringComparison.Ordinal));
            SecretScan.AssertAbsent(secrets, logs, Path.Combine(Folder.Path, "data"));
        }
    }

    [Fact]
    public async Task The_check_every_test_broker_runs_when_it_stops_catches_a_secret_in_the_data_folder()
    {
        var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using (var browser = broker.NewBrowser())
        {
            await browser.LoginAsync(StandardInstances.TrackeepCallback);
        }

        var leaked = GitHub.Secrets.First(secret => secret.StartsWith("gho_", StringComparison.Ordinal));
        Directory.CreateDirectory(broker.DataPath);
        await File.WriteAllTextAsync(Path.Combine(broker.DataPath, "debug-dump.txt"), "token=" + leaked);

        var dispose = async () => await broker.DisposeAsync();

        (await dispose.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("debug-dump.txt");
    }

    [Fact]
    public async Task The_check_every_test_broker_runs_when_it_stops_catches_a_secret_in_the_database()
    {
        var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using (var browser = broker.NewBrowser())
        {
            await browser.LoginAsync(StandardInstances.TrackeepCallback);
        }

        var leaked = GitHub.Secrets.First(secret => secret.StartsWith("gho_", StringComparison.Ordinal));
        await broker.ValueAsync($"INSERT INTO audit_events (at, kind, action, reason) VALUES (0, 'login', 'debug', 'token={leaked}')");

        var dispose = async () => await broker.DisposeAsync();

        (await dispose.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("appears in plain text");
    }
}
