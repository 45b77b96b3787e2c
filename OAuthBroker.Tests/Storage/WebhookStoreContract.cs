using OAuthBroker.Tests.Support;
using OAuthBroker.GitHub;
using OAuthBroker.Webhooks;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// What every webhook backend must do: a delivery id is accepted once among racing replicas, with its outbox rows and
/// effects in the same transaction; only the head of each ordering key is due; a message is claimed by one caller;
/// dead letters can be put back; old rows are purged.
/// </summary>
public abstract class WebhookStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    [Fact]
    public async Task Of_racing_acceptances_of_one_delivery_exactly_one_writes_and_the_others_write_nothing()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => Backend.Webhooks()).ToList();
        var delivery = new WebhookDelivery(Guid.NewGuid().ToString(), "installation", "{\"action\":\"deleted\"}", 1_000);
        var targets = new[] { new OutboxTarget("trackeep-home", "installation:5"), new OutboxTarget("other", "installation:5") };
        var effects = new WebhookEffects { Installation = new InstallationStatus(5, "octo-org", "deleted") };

        var results = await Task.WhenAll(Enumerable.Range(0, 24).Select(i => Task.Run(() => stores[i % stores.Count].AcceptAsync(delivery, targets, effects, CancellationToken.None))));

        results.Count(accepted => accepted).Should().Be(1);
        (await stores[0].ListAsync(dead: false, 100, CancellationToken.None)).Should().HaveCount(2, "one row per target, written once");
        (await stores[1].FindInstallationStatusAsync(5, CancellationToken.None)).Should().Be("deleted");
    }

    [Fact]
    public async Task A_revoked_app_authorization_drops_the_users_records_of_the_apps_tokens_with_the_delivery_and_only_those()
    {
        var users = Backend.Users(TimeProvider.System);
        var revoking = await users.RecordLoginAsync(new GitHubUser(9001, "revoking", null, null, null), new("trackeep-home", GitHubProviders.GitHubApp, ""), CancellationToken.None);
        await users.RecordLoginAsync(new GitHubUser(9001, "revoking", null, null, null), new("legacy-rsa", GitHubProviders.OAuthApp, "read:user"), CancellationToken.None);
        var other = await users.RecordLoginAsync(new GitHubUser(9002, "other", null, null, null), new("trackeep-home", GitHubProviders.GitHubApp, ""), CancellationToken.None);
        var store = Backend.Webhooks();
        var delivery = new WebhookDelivery("revoke-1", WebhookEvents.AppAuthorization, "{\"action\":\"revoked\"}", 1_000);
        var effects = new WebhookEffects { RevokedGitHubUserId = 9001, RevokedInstanceIds = ["trackeep-home"] };

        (await store.AcceptAsync(delivery, [new OutboxTarget("trackeep-home", "user:9001")], effects, CancellationToken.None)).Should().BeTrue();

        (await users.ListInstancesAsync(revoking.Id, CancellationToken.None)).Should().ContainSingle("the OAuth App's token is not the app's to revoke")
            .Which.Provider.Should().Be(GitHubProviders.OAuthApp);
        (await users.ListInstancesAsync(other.Id, CancellationToken.None)).Should().ContainSingle("another user's tokens are untouched");
        await users.RecordLoginAsync(new GitHubUser(9001, "revoking", null, null, null), new("trackeep-home", GitHubProviders.GitHubApp, ""), CancellationToken.None);
        (await store.AcceptAsync(delivery, [new OutboxTarget("trackeep-home", "user:9001")], effects, CancellationToken.None)).Should().BeFalse();
        (await users.ListInstancesAsync(revoking.Id, CancellationToken.None)).Should().HaveCount(2, "a delivery seen before has no effect again, on a token issued since");
    }

    [Fact]
    public async Task Only_the_head_of_each_ordering_key_is_due_and_a_claim_has_one_winner()
    {
        var store = Backend.Webhooks();
        foreach (var (id, key) in new[] { ("d1", "installation:1"), ("d2", "installation:1"), ("d3", "installation:2") })
        {
            (await store.AcceptAsync(new WebhookDelivery(id, "installation", "{}", 1_000), [new OutboxTarget("trackeep-home", key)], WebhookEffects.None, CancellationToken.None)).Should().BeTrue();
        }

        var due = await store.FindDueAsync(2_000, 100, CancellationToken.None);
        due.Select(message => message.DeliveryId).Should().Equal("d1", "d3");
        var claims = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Backend.Webhooks().ClaimAsync(due[0].Id, 2_000, 60_000, CancellationToken.None))));
        claims.Count(won => won).Should().Be(1);
        (await store.FindDueAsync(3_000, 100, CancellationToken.None)).Select(message => message.DeliveryId).Should().Equal("d3");

        await store.MarkFailedAsync(due[0].Id, 1, 10_000, null, "HTTP 500", CancellationToken.None);
        (await store.FindDueAsync(5_000, 100, CancellationToken.None)).Select(message => message.DeliveryId).Should().Equal("d3");
        (await store.FindDueAsync(10_000, 100, CancellationToken.None)).Select(message => message.DeliveryId).Should().Equal("d1", "d3");

        await store.MarkDeliveredAsync(due[0].Id, 10_000, CancellationToken.None);
        (await store.FindDueAsync(10_000, 100, CancellationToken.None)).Select(message => message.DeliveryId).Should().Equal(["d2", "d3"], "once d1 is delivered, d2 is next");
    }

    [Fact]
    public async Task A_dead_letter_no_longer_holds_its_key_back_and_can_be_put_back_once()
    {
        var store = Backend.Webhooks();
        await store.AcceptAsync(new WebhookDelivery("e1", "installation", "{}", 1_000), [new OutboxTarget("trackeep-home", "installation:9")], WebhookEffects.None, CancellationToken.None);
        await store.AcceptAsync(new WebhookDelivery("e2", "installation", "{}", 1_000), [new OutboxTarget("trackeep-home", "installation:9")], WebhookEffects.None, CancellationToken.None);
        var first = (await store.FindDueAsync(2_000, 10, CancellationToken.None)).Single();

        await store.MarkFailedAsync(first.Id, 7, 99_000, 50_000, "HTTP 503", CancellationToken.None);

        var dead = (await store.ListAsync(dead: true, 10, CancellationToken.None)).Single();
        dead.DeadAt.Should().Be(50_000);
        dead.LastError.Should().Be("HTTP 503");
        (await store.FindDueAsync(60_000, 10, CancellationToken.None)).Single().DeliveryId.Should().Be("e2");
        var requeued = await store.RedeliverAsync(first.Id, 70_000, CancellationToken.None);
        requeued!.Id.Should().Be(first.Id);
        requeued.DeadAt.Should().BeNull();
        (await store.RedeliverAsync(first.Id, 70_000, CancellationToken.None)).Should().BeNull("it is pending again, not dead");
        var back = (await store.ListAsync(dead: false, 10, CancellationToken.None)).Single(message => message.Id == first.Id);
        back.Attempts.Should().Be(0);
        back.CreatedAt.Should().Be(70_000, "a redelivery gets a fresh retry window");
    }

    [Fact]
    public async Task Installations_remember_their_instances_and_old_rows_are_purged()
    {
        var store = Backend.Webhooks();
        await store.RecordInstallationAsync(42, "trackeep-home", 7, "octo-org", 1_000, CancellationToken.None);
        await store.RecordInstallationAsync(42, "other", null, null, 2_000, CancellationToken.None);
        await store.RecordInstallationAsync(42, "other", null, null, 3_000, CancellationToken.None);

        (await store.FindInstallationInstancesAsync(42, CancellationToken.None)).Should().Equal("other", "trackeep-home");
        (await store.FindInstallationStatusAsync(42, CancellationToken.None)).Should().Be("active");

        await store.AcceptAsync(new WebhookDelivery("old", "installation", "{}", 1_000), [new OutboxTarget("trackeep-home", "installation:42")], WebhookEffects.None, CancellationToken.None);
        var message = (await store.FindDueAsync(2_000, 10, CancellationToken.None)).Single();
        await store.MarkDeliveredAsync(message.Id, 2_000, CancellationToken.None);
        (await store.PurgeAsync(1_500, 2_500, CancellationToken.None)).Should().Be(2, "the delivery id and the delivered message");
        (await store.AcceptAsync(new WebhookDelivery("old", "installation", "{}", 5_000), [], WebhookEffects.None, CancellationToken.None)).Should().BeTrue("a forgotten id is new again");
    }
}

public sealed class SqliteWebhookStoreTests : WebhookStoreContract<SqliteBackend>;

public sealed class PostgresWebhookStoreTests : WebhookStoreContract<PostgresBackend>;
