using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Login;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// What every backend must do for pending logins, run against each: one-time, browser-bound, expiring logins, whose
/// used ids are purged once expired, taken exactly once however many replays race for them through however many
/// connections. The logins themselves are sealed into their state; the backend keeps the ids of the used ones.
/// </summary>
public abstract class PendingLoginStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    private const string Callback = "https://trackeep.example.com/auth/callback";

    private FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));

    /// <summary>One key ring for every store of a test, as replicas share theirs.</summary>
    private IDataProtectionProvider KeyRing { get; } = new EphemeralDataProtectionProvider();

    private PendingLoginStore NewStore() => new(Backend.UsedLogins(), KeyRing, Clock, TestMetrics.Create());

    [Fact]
    public async Task A_login_is_taken_once_by_the_browser_that_started_it()
    {
        var store = NewStore();
        var started = store.Create("trackeep-home", Callback, "instance-state", "read:user", "form_post", "{\"nonce\":\"n-0S6\"}");

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
        var started = store.Create("trackeep-home", Callback, null, "read:user", "query", null);
        var other = store.Create("trackeep-home", Callback, null, "read:user", "query", null);

        (await store.TryConsumeAsync(started.State, other.BrowserSecret, CancellationToken.None)).Refusal.Should().Be(LoginRefusal.OtherBrowser);
        (await store.TryConsumeAsync(started.State, started.BrowserSecret, CancellationToken.None)).Refusal.Should().BeNull();
    }

    [Fact]
    public async Task An_expired_login_is_refused_and_says_where_it_was_going()
    {
        var store = NewStore();
        var started = store.Create("trackeep-home", Callback, null, "read:user", "query", null);
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
        var started = store.Create("trackeep-home", Callback, null, "read:user", "query", null);

        (await store.TryConsumeAsync(state, started.BrowserSecret, CancellationToken.None)).Refusal.Should().Be(LoginRefusal.UnknownState);
    }

    [Fact]
    public async Task Logins_started_in_the_same_millisecond_are_told_apart()
    {
        var store = NewStore();
        var logins = new List<StartedLogin>();
        for (var i = 0; i < 5; i++)
        {
            logins.Add(store.Create($"instance-{i}", Callback, null, "read:user", "query", null));
        }

        for (var i = 0; i < 5; i++)
        {
            (await store.TryConsumeAsync(logins[i].State, logins[i].BrowserSecret, CancellationToken.None)).Login!.InstanceId.Should().Be($"instance-{i}");
        }
    }

    [Fact]
    public async Task A_login_with_every_field_at_its_bound_fits_the_longest_state_the_callback_reads()
    {
        var store = NewStore();
        var redirect = "https://trackeep.example.com/" + new string('p', OAuthBroker.Allowlist.RedirectUri.MaxLength - 30);
        var request = "{\"scopes\":[\"" + new string('s', OAuthBroker.Oidc.OidcEndpoints.MaxScopeLength) + "\"],\"nonce\":\"" + new string('n', OAuthBroker.Oidc.OidcEndpoints.MaxNonceLength) + "\"}";
        var started = store.Create(new string('i', 64), redirect, new string('é', LoginEndpoints.MaxInstanceStateLength), new string('r', OAuthBroker.Oidc.OidcEndpoints.MaxScopeLength), "form_post", request);

        var result = await store.TryConsumeAsync(started.State, started.BrowserSecret, CancellationToken.None);

        started.State.Length.Should().BeLessThanOrEqualTo(PendingLoginStore.MaxStateLength);
        result.Login.Should().BeEquivalentTo(new { RedirectUri = redirect, InstanceState = new string('é', LoginEndpoints.MaxInstanceStateLength), Request = request });
    }

    [Fact]
    public async Task A_state_sealed_by_another_key_ring_is_unknown()
    {
        var other = new PendingLoginStore(Backend.UsedLogins(), new EphemeralDataProtectionProvider(), Clock, TestMetrics.Create());
        var started = other.Create("trackeep-home", Callback, null, "read:user", "query", null);

        (await NewStore().TryConsumeAsync(started.State, started.BrowserSecret, CancellationToken.None)).Refusal.Should().Be(LoginRefusal.UnknownState);
    }

    [Fact]
    public async Task Purging_deletes_the_ids_of_used_logins_once_expired_past_the_retention()
    {
        var store = NewStore();
        var used = store.Create("trackeep-home", Callback, null, "read:user", "query", null);
        await store.TryConsumeAsync(used.State, used.BrowserSecret, CancellationToken.None);
        store.Create("trackeep-home", Callback, null, "read:user", "query", null);
        Clock.Advance(PendingLoginStore.Lifetime + PendingLoginStore.Retention - TimeSpan.FromMinutes(1));
        var later = store.Create("trackeep-home", Callback, null, "read:user", "query", null);
        await store.TryConsumeAsync(later.State, later.BrowserSecret, CancellationToken.None);

        var first = await store.PurgeAsync(CancellationToken.None);
        Clock.Advance(TimeSpan.FromMinutes(2));
        var second = await store.PurgeAsync(CancellationToken.None);
        var replay = await store.TryConsumeAsync(later.State, later.BrowserSecret, CancellationToken.None);

        first.Should().Be(0, "the used login expired less than the retention ago; the abandoned one left nothing");
        second.Should().Be(1, "now it expired more than the retention ago");
        replay.Refusal.Should().Be(LoginRefusal.AlreadyUsed, "the later login's id is kept");
    }

    /// <summary>
    /// Each replay goes through one of several stores (each with its own connection pool, as on another replica), all
    /// released at once, for several logins in turn. The insert of the login's id under its primary key is what makes
    /// exactly one win: with a plain insert into a table without that key, several get through (checked by hand).
    /// </summary>
    [Fact]
    public async Task Of_concurrent_replays_through_separate_stores_exactly_one_succeeds_for_each_login()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => NewStore()).ToList();
        var outcomes = new List<int>();
        for (var round = 0; round < 10; round++)
        {
            var started = stores[0].Create("trackeep-home", Callback, null, "read:user", "query", null);
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
