using System.Net;
using Npgsql;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Hardening;

/// <summary>
/// PostgreSQL going away (a restart, a failover) is something only that backend has: the broker answers a clear 503
/// (a page, Retry-After, never a redirect), reports not ready, and recovers by itself when the database is back.
/// </summary>
public sealed class DatabaseOutageTests : FakeGitHubTest
{
    [Fact]
    public async Task While_PostgreSQL_refuses_connections_logins_get_a_503_page_readiness_fails_and_both_recover_without_restart()
    {
        var cluster = await PostgresCluster.GetAsync();
        var connectionString = await cluster.CreateDatabaseAsync();
        var database = new NpgsqlConnectionStringBuilder(connectionString).Database;
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
        {
            ["Broker:Database"] = "postgres",
            ["ConnectionStrings:Broker"] = connectionString,
        });
        using var browser = broker.NewBrowser();
        using var health = broker.CreateClient();
        (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token");

        await cluster.AdministerAsync($"ALTER DATABASE {database} ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'");
        using var start = await browser.StartAsync(StandardInstances.TrackeepCallback);
        using var ready = await health.GetAsync(new Uri("/readyz", UriKind.Relative));

        start.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        start.Headers.Location.Should().BeNull();
        start.Headers.RetryAfter!.Delta.Should().Be(TimeSpan.FromSeconds(5));
        start.Content.Headers.ContentType!.MediaType.Should().Be("text/html");
        (await start.Content.ReadAsStringAsync()).Should().Contain("cannot reach its database").And.NotContain("Host=").And.NotContain("Password");
        ready.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        broker.Logs.Lines.Should().Contain(line => line.EventId == 6003);

        await cluster.AdministerAsync($"ALTER DATABASE {database} ALLOW_CONNECTIONS true");
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(10), async () =>
        {
            using var again = await health.GetAsync(new Uri("/readyz", UriKind.Relative));
            return again.StatusCode == HttpStatusCode.OK;
        })).Should().BeTrue("the broker recovers without a restart");
        (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token");
    }
}
