using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Audit;
using OAuthBroker.GitHub;
using OAuthBroker.Tests.Support;
using OAuthBroker.Users;

namespace OAuthBroker.Tests.Storage;

/// <summary>What every users backend must do: one user per GitHub id, its profile refreshed at each login.</summary>
public abstract class UserStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task A_user_is_created_at_first_login_and_keeps_its_id_through_a_rename()
    {
        var users = Backend.Users(clock);
        var first = await users.RecordLoginAsync(new GitHubUser(583231, "octocat", "The Octocat", null, "https://avatars.example/1"), null, CancellationToken.None);
        clock.Advance(TimeSpan.FromMinutes(5));

        var renamed = await users.RecordLoginAsync(new GitHubUser(583231, "octocat-renamed", null, "octo@example.com", null), null, CancellationToken.None);

        renamed.Id.Should().Be(first.Id);
        renamed.Should().BeEquivalentTo(new { GitHubId = 583231L, Login = "octocat-renamed", Name = (string?)null, Email = "octo@example.com", AvatarUrl = (string?)null });
        renamed.FirstLoginAt.Should().Be(first.FirstLoginAt);
        renamed.LastLoginAt.Should().Be(first.LastLoginAt + 300_000);
        (await users.FindAsync(first.Id, CancellationToken.None)).Should().Be(renamed);
        (await users.FindAsync(first.Id + 1000, CancellationToken.None)).Should().BeNull();
    }

    [Fact]
    public async Task Concurrent_first_logins_of_one_GitHub_user_through_separate_stores_make_one_user()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => Backend.Users(clock)).ToList();

        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            Task.Run(() => stores[i % stores.Count].RecordLoginAsync(new GitHubUser(42, "racer", null, null, null), null, CancellationToken.None))));

        results.Select(user => user.Id).Distinct().Should().ContainSingle();
    }

    [Fact]
    public async Task Each_login_counts_a_token_per_instance_integration_and_scope_set_until_the_grant_is_forgotten_or_a_year_passes()
    {
        var users = Backend.Users(clock);
        var octocat = new GitHubUser(583231, "Octocat", null, null, null);
        BrokerUser user = null!;
        foreach (var instance in Enumerable.Range(0, 9).Select(i => $"instance-{i}"))
        {
            user = await users.RecordLoginAsync(octocat, new(instance, "oauth-app", "read:user user:email"), CancellationToken.None);
        }

        user = await users.RecordLoginAsync(octocat, new("instance-0", "oauth-app", "read:user user:email"), CancellationToken.None);
        await users.RecordLoginAsync(octocat, new("instance-0", "oauth-app", "repo"), CancellationToken.None);
        clock.Advance(TimeSpan.FromMinutes(1));
        await users.RecordLoginAsync(octocat, new("instance-app", "github-app", ""), CancellationToken.None);
        await users.RecordLoginAsync(new GitHubUser(7, "someone-else", null, null, null), new("instance-0", "oauth-app", "read:user user:email"), CancellationToken.None);

        var listed = await Backend.Users(clock).ListInstancesAsync(user.Id, CancellationToken.None);
        listed.Should().HaveCount(11);
        listed[0].Should().BeEquivalentTo(new { InstanceId = "instance-app", Provider = "github-app", Scope = "", Tokens = 1L });
        listed.Single(row => row.InstanceId == "instance-0" && row.Scope == "read:user user:email").Tokens.Should().Be(2);
        var risks = await users.FindNearTokenLimitAsync(8, 10, CancellationToken.None);
        risks.Should().ContainSingle().Which.Should().Be(new TokenLimitRisk(user.Id, "Octocat", "oauth-app", "read:user user:email", 10, 9));
        (await users.FindByLoginAsync("OCTOCAT", CancellationToken.None))!.Id.Should().Be(user.Id);
        (await users.FindByGitHubIdAsync(583231, CancellationToken.None))!.Id.Should().Be(user.Id);
        (await users.FindByLoginAsync("nobody", CancellationToken.None)).Should().BeNull();

        (await users.ForgetInstancesAsync(user.Id, "oauth-app", CancellationToken.None)).Should().Be(10);
        (await users.ListInstancesAsync(user.Id, CancellationToken.None)).Should().ContainSingle().Which.Provider.Should().Be("github-app");
        clock.Advance(UserInstancePurge.Retention);
        (await new UserInstancePurge(users, clock).PurgeAsync(CancellationToken.None)).Should().Be(0, "the last rows are exactly as old as the retention");
        clock.Advance(TimeSpan.FromSeconds(1));
        (await new UserInstancePurge(users, clock).PurgeAsync(CancellationToken.None)).Should().Be(2);
    }
}

/// <summary>What every audit backend must do: record, redact, page, count refusals into bounded rows, purge.</summary>
public abstract class AuditLogContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 12, 3, 12, 0, 30, TimeSpan.Zero));

    private AuditLog NewLog(int sourcesPerMinute = 1000) =>
        new(Backend.Audit(), Options.Create(new AuditOptions { RefusalSourcesPerMinute = sourcesPerMinute }), clock);

    [Fact]
    public async Task Events_are_recorded_with_shared_secrets_redacted_and_read_back_newest_first_in_pages()
    {
        var log = NewLog();
        var entry = new JsonObject { ["id"] = "lab", ["encryptionKey"] = new JsonObject { ["kty"] = "oct", ["k"] = "c2VjcmV0LXNoYXJlZC1rZXktdGhhdC1tdXN0LW5vdC1sZWFr" } };
        await log.RecordAdminAsync("admin:octocat", "instance.created", "lab", null, entry, "203.0.113.9", CancellationToken.None);
        for (var i = 0; i < 5; i++)
        {
            await log.RecordLoginAsync("trackeep-home", $"user{i}", "succeeded", null, "198.51.100.7", CancellationToken.None);
        }

        var first = await log.QueryAsync(new AuditQuery("trackeep-home", AuditKinds.Login, null, null, 3), CancellationToken.None);
        var second = await log.QueryAsync(new AuditQuery("trackeep-home", AuditKinds.Login, null, first.NextBeforeId, 3), CancellationToken.None);
        var admin = await log.QueryAsync(new AuditQuery(null, AuditKinds.Admin, "instance.created", null, 10), CancellationToken.None);

        first.Events.Select(e => e.Actor).Should().Equal("user4", "user3", "user2");
        second.Events.Select(e => e.Actor).Should().Equal("user1", "user0");
        second.NextBeforeId.Should().BeNull();
        var created = admin.Events.Should().ContainSingle().Subject;
        created.After!.ToJsonString().Should().NotContain("c2VjcmV0").And.Contain("redacted");
        created.Before.Should().BeNull();
        created.ClientIp.Should().Be("203.0.113.9");
    }

    [Fact]
    public async Task Refusals_of_one_source_reason_and_minute_are_one_row_with_their_count_even_from_separate_stores()
    {
        var logs = Enumerable.Range(0, 4).Select(_ => NewLog()).ToList();
        var client = IPAddress.Parse("2001:db8:1:2::77");

        await Task.WhenAll(Enumerable.Range(0, 60).Select(i =>
            Task.Run(() => logs[i % logs.Count].RecordRefusalAsync("trackeep-home", "redirect_uri_not_allowed", client, CancellationToken.None))));
        await logs[0].RecordRefusalAsync("trackeep-home", "scope_not_allowed", client, CancellationToken.None);

        var rows = (await logs[0].QueryAsync(new AuditQuery("trackeep-home", null, "refused", null, 10), CancellationToken.None)).Events;
        rows.Should().HaveCount(2);
        rows.Single(row => row.Reason == "redirect_uri_not_allowed").Count.Should().Be(60);
        rows.Should().OnlyContain(row => row.ClientIp == "2001:db8:1:2::/64");
    }

    [Fact]
    public async Task Beyond_the_sources_per_minute_further_sources_share_one_row()
    {
        var log = NewLog(sourcesPerMinute: 3);
        for (var i = 1; i <= 10; i++)
        {
            await log.RecordRefusalAsync(null, "unknown_instance", IPAddress.Parse($"192.0.2.{i}"), CancellationToken.None);
        }

        var rows = (await log.QueryAsync(new AuditQuery(null, null, "refused", null, 50), CancellationToken.None)).Events;
        rows.Should().HaveCount(4);
        rows.Single(row => row.ClientIp == "*").Count.Should().Be(7);
    }

    [Fact]
    public async Task Recent_logins_are_the_latest_few_of_each_instance()
    {
        var log = NewLog();
        for (var i = 0; i < 4; i++)
        {
            await log.RecordLoginAsync("a", $"a{i}", "succeeded", null, null, CancellationToken.None);
            await log.RecordLoginAsync("b", $"b{i}", "failed", "github_error", null, CancellationToken.None);
        }

        var recent = await log.RecentLoginsAsync(2, CancellationToken.None);

        recent["a"].Select(e => e.Actor).Should().BeEquivalentTo(["a3", "a2"]);
        recent["b"].Select(e => e.Reason).Should().OnlyContain(reason => reason == "github_error").And.HaveCount(2);
    }

    [Fact]
    public async Task Purging_deletes_what_is_older_than_the_retention()
    {
        var log = NewLog();
        await log.RecordLoginAsync("a", "old", "succeeded", null, null, CancellationToken.None);
        clock.Advance(new AuditOptions().Retention + TimeSpan.FromMinutes(1));
        await log.RecordLoginAsync("a", "new", "succeeded", null, null, CancellationToken.None);

        (await log.PurgeAsync(CancellationToken.None)).Should().Be(1);
        (await log.QueryAsync(new AuditQuery("a", null, null, null, 10), CancellationToken.None)).Events.Select(e => e.Actor).Should().Equal("new");
    }
}

public sealed class SqliteUserStoreTests : UserStoreContract<SqliteBackend>;

public sealed class PostgresUserStoreTests : UserStoreContract<PostgresBackend>;

public sealed class SqliteAuditLogTests : AuditLogContract<SqliteBackend>;

public sealed class PostgresAuditLogTests : AuditLogContract<PostgresBackend>;
