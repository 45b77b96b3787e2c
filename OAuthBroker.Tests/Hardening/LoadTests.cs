using System.Net;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using OAuthBroker.Login;
using OAuthBroker.Storage;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Hardening;

/// <summary>
/// Bounded load on loopback: correctness under concurrency and bounded storage under a flood. No timing is asserted;
/// speed is measured by the benchmarks in bench/.
/// </summary>
[Collection(RunsAlone.Name)]
public sealed class LoadTests : FakeGitHubTest
{
    [Fact]
    public async Task A_thousand_concurrent_logins_all_complete_then_a_flood_of_100000_abandoned_logins_leaves_the_table_bounded()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["GitHub:Timeout"] = "00:01:00" }, clock);
        _ = broker.Server;

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 1000).Select(async i =>
        {
            using var browser = broker.NewBrowser();
            var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback, state: $"s{i}");
            return (State: $"s{i}", outcome.Query);
        }));

        var failed = outcomes.Where(o => !o.Query.ContainsKey("token") || o.Query["state"] != o.State).ToList();
        failed.Should().BeEmpty("every flow must end at the instance with a token and its own state");
        outcomes.Select(o => new JsonWebToken(o.Query["token"]).Id).Distinct().Should().HaveCount(1000);

        // The flood: logins started and never finished, while time moves on and the purge runs.
        using var flooder = broker.CreateClient(new() { AllowAutoRedirect = false, HandleCookies = false });
        var start = Browser.StartUrl(StandardInstances.TrackeepCallback);
        var peak = 0L;
        for (var round = 0; round < 10; round++)
        {
            var remaining = 10_000;
            await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
            {
                while (Interlocked.Decrement(ref remaining) >= 0)
                {
                    using var response = await flooder.GetAsync(start);
                    response.StatusCode.Should().Be(HttpStatusCode.Redirect);
                }
            }));
            peak = Math.Max(peak, await CountAsync(broker));
            await AdvanceUntilPurgedAsync(clock, broker);
        }

        peak.Should().BeLessThanOrEqualTo(10_000 + 1_000, "rows never outlive lifetime plus retention, so a flood cannot pile up");
        (await CountAsync(broker)).Should().Be(0);
    }

    private static async Task AdvanceUntilPurgedAsync(FakeTimeProvider clock, BrokerFactory broker)
    {
        clock.Advance(PendingLoginStore.Lifetime + PendingLoginStore.Retention);
        await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(30), async () =>
        {
            clock.Advance(PurgeService.Interval);
            return await CountAsync(broker) == 0;
        });
    }

    private static Task<long> CountAsync(BrokerFactory broker) => broker.CountPendingLoginsAsync();

}

/// <summary>Load runs alone: sharing two cores with it would starve other tests' timeouts.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunsAlone
{
    public const string Name = "Load (runs alone)";
}
