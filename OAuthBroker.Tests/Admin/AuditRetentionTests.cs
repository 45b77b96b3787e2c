using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Audit;
using OAuthBroker.Storage;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Admin;

public sealed class AuditRetentionTests : FakeGitHubTest
{
    [Fact]
    public async Task Audit_events_older_than_the_retention_are_purged_and_newer_ones_kept()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Audit:Retention"] = "30.00:00:00" }, clock);
        var audit = broker.Services.GetRequiredService<AuditLog>();
        await audit.RecordLoginAsync("trackeep-home", "old", "succeeded", null, "127.0.0.1", default);
        clock.Advance(TimeSpan.FromDays(20));
        await audit.RecordLoginAsync("trackeep-home", "recent", "succeeded", null, "127.0.0.1", default);

        clock.Advance(TimeSpan.FromDays(11));
        var deadline = DateTime.UtcNow.AddSeconds(5);
        AuditPage page;
        do
        {
            // One purge interval per step: the purge timer may not be waiting yet when the clock first moves.
            clock.Advance(PurgeService.Interval);
            await Task.Delay(20);
            page = await audit.QueryAsync(new AuditQuery("trackeep-home", null, null, null, 10), default);
        }
        while (page.Events.Count > 1 && DateTime.UtcNow < deadline);

        page.Events.Select(e => e.Actor).Should().Equal("recent");
    }
}
