using System.Security.Cryptography;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>What every client-assertion backend must do: accept a jti once across connections (replicas), and purge.</summary>
public abstract class ClientAssertionStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    [Fact]
    public async Task Of_concurrent_presentations_of_one_jti_through_separate_connections_exactly_one_is_accepted()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => Backend.ClientAssertions()).ToList();
        for (var round = 0; round < 5; round++)
        {
            var jti = RandomNumberGenerator.GetBytes(32);
            using var go = new ManualResetEventSlim();
            var attempts = Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
            {
                go.Wait();
                return await stores[i % stores.Count].TryRecordAsync(jti, "trackeep-home", 10_000, CancellationToken.None);
            })).ToList();
            go.Set();
            (await Task.WhenAll(attempts)).Count(accepted => accepted).Should().Be(1);
        }
    }

    [Fact]
    public async Task Purging_deletes_expired_jtis_only_and_a_purged_jti_could_be_recorded_again()
    {
        var store = Backend.ClientAssertions();
        var (old, live) = (RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32));
        (await store.TryRecordAsync(old, "i", 1_000, CancellationToken.None)).Should().BeTrue();
        (await store.TryRecordAsync(live, "i", 9_000, CancellationToken.None)).Should().BeTrue();

        (await store.DeleteExpiredAsync(5_000, CancellationToken.None)).Should().Be(1);

        (await store.TryRecordAsync(live, "i", 9_000, CancellationToken.None)).Should().BeFalse();
        (await store.TryRecordAsync(old, "i", 1_000, CancellationToken.None)).Should().BeTrue("its expiry refuses a replay from then on");
    }
}

public sealed class SqliteClientAssertionStoreTests : ClientAssertionStoreContract<SqliteBackend>;

public sealed class PostgresClientAssertionStoreTests : ClientAssertionStoreContract<PostgresBackend>;
