using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Admin;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>What every admin-session backend must do: sessions that sign-out ends at once, expiry, purge, login pins.</summary>
public abstract class AdminSessionStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));

    private AdminSessionStore NewStore() => new(Backend.AdminSessions(), clock, NullLogger<AdminSessionStore>.Instance);

    [Fact]
    public async Task A_session_is_found_on_every_replica_until_it_is_signed_out_or_expires()
    {
        var a = NewStore();
        var b = NewStore();
        var admin = new AdminIdentity(583231, "octocat");
        var signedOut = await a.CreateAsync(admin, TimeSpan.FromHours(8), CancellationToken.None);
        var expiring = await a.CreateAsync(admin, TimeSpan.FromHours(1), CancellationToken.None);

        (await b.FindActiveAsync(signedOut, CancellationToken.None)).Should().Be(admin);
        await b.RevokeAsync(signedOut, CancellationToken.None);
        (await a.FindActiveAsync(signedOut, CancellationToken.None)).Should().BeNull("signing out on one replica ends the session on all");
        (await a.FindActiveAsync(expiring, CancellationToken.None)).Should().Be(admin);
        clock.Advance(TimeSpan.FromHours(1));
        (await a.FindActiveAsync(expiring, CancellationToken.None)).Should().BeNull();
        (await a.FindActiveAsync("not-a-session", CancellationToken.None)).Should().BeNull();
        (await a.FindActiveAsync(new string('A', 43), CancellationToken.None)).Should().BeNull();
    }

    [Fact]
    public async Task Purging_deletes_expired_sessions_only()
    {
        var store = NewStore();
        await store.CreateAsync(new AdminIdentity(1, "a"), TimeSpan.FromHours(1), CancellationToken.None);
        var kept = await store.CreateAsync(new AdminIdentity(2, "b"), TimeSpan.FromHours(8), CancellationToken.None);
        clock.Advance(TimeSpan.FromHours(2));

        (await store.PurgeAsync(CancellationToken.None)).Should().Be(1);
        (await store.FindActiveAsync(kept, CancellationToken.None)).Should().NotBeNull();
    }

    [Fact]
    public async Task A_login_is_pinned_to_the_first_GitHub_id_seen_with_it_whatever_its_case()
    {
        var store = NewStore();

        (await store.MatchesPinAsync("OctoCat", 583231, CancellationToken.None)).Should().BeTrue();
        (await NewStore().MatchesPinAsync("octocat", 583231, CancellationToken.None)).Should().BeTrue();
        (await NewStore().MatchesPinAsync("octocat", 999, CancellationToken.None)).Should().BeFalse("the login was renamed and claimed by another account");
    }
}

public sealed class SqliteAdminSessionStoreTests : AdminSessionStoreContract<SqliteBackend>;

public sealed class PostgresAdminSessionStoreTests : AdminSessionStoreContract<PostgresBackend>;
