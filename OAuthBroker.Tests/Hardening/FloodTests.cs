using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Hardening;

/// <summary>
/// A flood from many addresses, which per-client limits do not stop, on every path that writes without signing in:
/// the database stays bounded, and every refusal is still counted.
/// </summary>
public sealed class FloodTests : FakeGitHubTest
{
    [Fact]
    public async Task A_flood_from_many_addresses_on_every_write_path_keeps_the_database_bounded()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
        {
            ["RateLimits:LoginPerClientPerMinute"] = "1000",
            ["RateLimits:PendingLogins"] = "20",
            ["Audit:RefusalSourcesPerMinute"] = "10",
            ["Admin:GitHubLogins:0"] = "octo-admin",
        });
        using var client = broker.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var paths = new[]
        {
            Browser.StartUrl("https://evil.example.net/callback"),              // refused: not on the allowlist
            "/auth/github/callback?state=forged-state-value&code=x",             // refused: unknown state
            Browser.StartUrl(StandardInstances.TrackeepCallback),                // a pending login
            "/admin/login",                                                      // a pending login too
        };
        const int sources = 100;

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < sources; i++)
        {
            var address = i % 2 == 0 ? $"198.51.{i / 250}.{i % 250}" : $"2001:db8:{i:x}::1";
            foreach (var path in paths)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, path) { Headers = { { "X-Forwarded-For", address } } };
                using var response = await client.SendAsync(request);
                statuses.Add(response.StatusCode);
            }
        }

        var auditRows = await broker.ScalarAsync("SELECT COUNT(*) FROM audit_events");
        var refusalsCounted = await broker.ScalarAsync("SELECT SUM(count) FROM audit_events WHERE action = 'refused'");
        var pendingLogins = await broker.CountPendingLoginsAsync();

        statuses.Count(status => status == HttpStatusCode.BadRequest).Should().Be(2 * sources);
        statuses.Count(status => status == HttpStatusCode.ServiceUnavailable).Should().Be((2 * sources) - 20, "beyond the ceiling starts are turned away");
        pendingLogins.Should().Be(20);
        // Two reasons, ten sources with rows of their own and one row for the rest: at most 22 rows in a minute
        // (the run may straddle a minute boundary, which at most doubles that).
        auditRows.Should().BeLessThanOrEqualTo(44);
        refusalsCounted.Should().Be(2 * sources, "every refusal is still counted");
    }
}
