using System.Security.Cryptography;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>What every access-token backend must do: name the instance a token hash went to, keep the first, forget, purge.</summary>
public abstract class AccessTokenStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    [Fact]
    public async Task A_hash_names_the_instance_it_was_first_recorded_for_until_deleted_or_expired()
    {
        var store = Backend.AccessTokens();
        var (hash, expiring) = (RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32));
        var refresh = RandomNumberGenerator.GetBytes(32);
        await store.RecordAsync(hash, "trackeep-home", 1, 0, 100_000, refresh, CancellationToken.None);
        await store.RecordAsync(hash, "other", 2, 0, 100_000, null, CancellationToken.None);
        await store.RecordAsync(expiring, "trackeep-home", 1, 0, 5_000, null, CancellationToken.None);

        (await Backend.AccessTokens().FindInstanceAsync(hash, CancellationToken.None)).Should().Be("trackeep-home", "another replica reads the same");
        (await store.FindInstanceAsync(RandomNumberGenerator.GetBytes(32), CancellationToken.None)).Should().BeNull();
        (await store.FindRefreshHashAsync(hash, CancellationToken.None)).Should().Equal(refresh, "the refresh token issued with it");
        (await store.FindRefreshHashAsync(expiring, CancellationToken.None)).Should().BeNull();
        (await store.DeleteExpiredAsync(10_000, CancellationToken.None)).Should().Be(1);
        (await store.FindInstanceAsync(expiring, CancellationToken.None)).Should().BeNull();
        await store.DeleteAsync(hash, CancellationToken.None);
        (await store.FindInstanceAsync(hash, CancellationToken.None)).Should().BeNull();
    }
}

public sealed class SqliteAccessTokenStoreTests : AccessTokenStoreContract<SqliteBackend>;

public sealed class PostgresAccessTokenStoreTests : AccessTokenStoreContract<PostgresBackend>;
