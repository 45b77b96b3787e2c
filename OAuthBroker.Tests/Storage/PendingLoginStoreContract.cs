using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Login;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// What every pending-login backend must do, run against each: one-time, browser-bound, expiring logins, purged when
/// they have ended, and taken exactly once however many replays race for them through however many connections.
/// </summary>
public abstract class PendingLoginStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    private const string Callback = "https://trackeep.example.com/auth/callback";

    private FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));

    private PendingLoginStore NewStore() => new(Backend.PendingLogins(), Clock, TestMetrics.Create());

    [Fact]
    public async Task A_login_is_taken_once_by_the_browser_that_started_it()
    {
        var store = NewStore();
        var started = await store.CreateAsync("trackeep-home", Callback, "instance-state", "read:user", "form_post", "{\"nonce\":\"n-0S6\"}", CancellationToken.None);

        var first = await store.TryConsumeAsync(started.State, started.BrowserSecret, CancellationToken.None);
        var again = await store.TryConsumeAsync(started.State, started.BrowserSecret, CancellationToken.None);

        first.Refusal.Should().BeNull();
        first.Login.Should().BeEquivalentTo(new { InstanceId = "trackeep-home", RedirectUri = Callback, InstanceState = "instance-state", Scope = "read:user", ResponseMode = "form_post", Request = "{\"nonce\":\"n-0S6\"}" });
        first.Login!.CodeVerifier.Should().HaveLength(43);
        again.Refusal.Should().Be(LoginRefusal.AlreadyUsed);
    }

    [Fact]
    public async Task Another_browser_is_refused_and_leaves_the_login_to_its_own_browser()
    {
        var store = NewStore();
        var started = await store.CreateAsync("trackeep-home", Callback, null, "read:user", "query", null, CancellationToken.None);
        var other = await store.CreateAsync("trackeep-home", Callback, null, "read:user", "query", null, CancellationToken.None);

        (await store.TryConsumeAsync(started.State, other.BrowserSecret, CancellationToken.None)).Refusal.Should().Be(LoginRefusal.OtherBrowser);
        (await store.TryConsumeAsync(started.State, started.BrowserSecret, CancellationToken.None)).Refusal.Should().BeNull();
    }

    [Fact]
    public async Task An_expired_login_is_refused_and_says_where_it_was_going()
    {
        var store = NewStore();
        var started = await store.CreateAsync("trackeep-home", Callback, null, "read:user", "query", null, CancellationToken.None);
        Clock.Advance(PendingLoginStore.Lifetime);

        var result = await store.TryConsumeAsync(started.State, started.BrowserSecret, CancellationToken.None);

        result.Refusal.Should().Be(LoginRefusal.Expired);
        result.ExpiredRedirectUri.Should().Be(Callback);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("not-a-state")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public async Task A_state_the_broker_did_not_issue_is_unknown(string? state)
    {
        var store = NewStore();
        var started = await store.CreateAsync("trackeep-home", Callback, null, "read:user", "query", null, CancellationToken.None);

        (await store.TryConsumeAsync(state, started.BrowserSecret, CancellationToken.None)).Refusal.Should().Be(LoginRefusal.UnknownState);
    }

    [Fact]
    public async Task Logins_started_in_the_same_millisecond_are_told_apart()
    {
        var store = NewStore();
        var logins = new List<StartedLogin>();
        for (var i = 0; i < 5; i++)
        {
            logins.Add(await store.CreateAsync($"instance-{i}", Callback, null, "read:user", "query", null, CancellationToken.None));
        }

        for (var i = 0; i < 5; i++)
        {
            (await store.TryConsumeAsync(logins[i].State, logins[i].BrowserSecret, CancellationToken.None)).Login!.InstanceId.Should().Be($"instance-{i}");
        }
    }

    [Fact]
    public async Task Purging_deletes_what_ended_past_the_retention_and_keeps_the_rest()
    {
        var store = NewStore();
        var used = await store.CreateAsync("trackeep-home", Callback, null, "read:user", "query", null, CancellationToken.None);
        await store.TryConsumeAsync(used.State, used.BrowserSecret, CancellationToken.None);
        var abandoned = await store.CreateAsync("trackeep-home", Callback, null, "read:user", "query", null, CancellationToken.None);
        Clock.Advance(PendingLoginStore.Retention + TimeSpan.FromMinutes(1));
        var fresh = await store.CreateAsync("trackeep-home", Callback, null, "read:user", "query", null, CancellationToken.None);

        var first = await store.PurgeAsync(CancellationToken.None);
        Clock.Advance(PendingLoginStore.Lifetime);
        var second = await store.PurgeAsync(CancellationToken.None);

        first.Should().Be(1, "the consumed login ended more than the retention ago; the abandoned one expired less than that ago");
        second.Should().Be(1, "now the abandoned one has too");
        (await store.TryConsumeAsync(fresh.State, fresh.BrowserSecret, CancellationToken.None)).Refusal.Should().Be(LoginRefusal.Expired, "the fresh row is kept");
        (await store.TryConsumeAsync(abandoned.State, abandoned.BrowserSecret, CancellationToken.None)).Refusal.Should().Be(LoginRefusal.UnknownState);
    }

    /// <summary>
    /// Each replay goes through one of several stores (each with its own connection pool, as on another replica), all
    /// released at once, for several logins in turn. The conditional update is what makes exactly one win: without
    /// <c>consumed_at IS NULL</c> the PostgreSQL backend lets several through (checked by hand).
    /// </summary>
    [Fact]
    public async Task Of_concurrent_replays_through_separate_stores_exactly_one_succeeds_for_each_login()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => NewStore()).ToList();
        var outcomes = new List<int>();
        for (var round = 0; round < 10; round++)
        {
            var started = await stores[0].CreateAsync("trackeep-home", Callback, null, "read:user", "query", null, CancellationToken.None);
            using var go = new ManualResetEventSlim();
            var replays = Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
            {
                go.Wait();
                return await stores[i % stores.Count].TryConsumeAsync(started.State, started.BrowserSecret, CancellationToken.None);
            })).ToList();
            go.Set();
            var results = await Task.WhenAll(replays);
            results.Where(result => result.Login is null).Should().OnlyContain(result => result.Refusal == LoginRefusal.AlreadyUsed);
            outcomes.Add(results.Count(result => result.Login is not null));
        }

        outcomes.Should().AllBeEquivalentTo(1, "each login is taken exactly once");
    }
}

public sealed class SqlitePendingLoginStoreTests : PendingLoginStoreContract<SqliteBackend>;

public sealed class PostgresPendingLoginStoreTests : PendingLoginStoreContract<PostgresBackend>;
