using OAuthBroker.Storage;

namespace OAuthBroker.Lifecycle;

/// <summary>
/// The <c>jti</c> of every client assertion (private_key_jwt) the token endpoint accepted, by hash, until the
/// assertion expires: a replay finds its jti taken. One implementation per database.
/// </summary>
public interface IClientAssertionRepository
{
    /// <summary>Records the jti; false when it was recorded already (a replay), on any replica. A single atomic insert.</summary>
    Task<bool> TryRecordAsync(byte[] jtiHash, string instanceId, long expiresAt, CancellationToken cancellationToken);

    Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken);
}

public sealed class SqliteClientAssertionRepository(SqliteConnectionFactory connections) : IClientAssertionRepository
{
    public async Task<bool> TryRecordAsync(byte[] jtiHash, string instanceId, long expiresAt, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        return await lease.Prepared("INSERT INTO client_assertions (jti_hash, instance_id, expires_at) VALUES (@hash, @instance, @expires) ON CONFLICT (jti_hash) DO NOTHING")
            .With("@hash", jtiHash).With("@instance", instanceId).With("@expires", expiresAt)
            .ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("DELETE FROM client_assertions WHERE expires_at < @now").With("@now", now).ExecuteNonQueryAsync(cancellationToken);
    }
}

public sealed class PostgresClientAssertionRepository(PostgresDatabase database) : IClientAssertionRepository
{
    public async Task<bool> TryRecordAsync(byte[] jtiHash, string instanceId, long expiresAt, CancellationToken cancellationToken) =>
        await database.ExecuteAsync("INSERT INTO client_assertions (jti_hash, instance_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (jti_hash) DO NOTHING",
            cancellationToken, jtiHash, instanceId, expiresAt) == 1;

    public Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken) =>
        database.ExecuteAsync("DELETE FROM client_assertions WHERE expires_at < $1", cancellationToken, now);
}
