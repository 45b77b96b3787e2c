using OAuthBroker.Storage;

namespace OAuthBroker.Login;

/// <summary>
/// The ids of logins that came back to the callback, one implementation per database. <see cref="PendingLoginStore"/>
/// holds the rules; this holds the one-time guarantee: <see cref="TryMarkUsedAsync"/> is a single insert that succeeds
/// for exactly one caller across every process sharing the database (the primary key refuses every other).
/// </summary>
public interface IUsedLoginRepository
{
    /// <summary>Records the login <paramref name="loginId"/> (expiring at <paramref name="expiresAt"/>) as used; false if it already was.</summary>
    Task<bool> TryMarkUsedAsync(long expiresAt, byte[] loginId, CancellationToken cancellationToken);

    /// <summary>Deletes the ids of logins that expired before <paramref name="cutoff"/>; returns how many.</summary>
    Task<int> DeleteExpiredAsync(long cutoff, CancellationToken cancellationToken);
}

public sealed class SqliteUsedLoginRepository(SqliteConnectionFactory connections) : IUsedLoginRepository
{
    // The key starts with the expiry, so new ids go to the end of the table however many recent ones it holds.
    private const string MarkSql = "INSERT INTO used_logins (expires_at, login_id) VALUES (@expiresAt, @loginId) ON CONFLICT DO NOTHING";

    public async Task<bool> TryMarkUsedAsync(long expiresAt, byte[] loginId, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        return await lease.Prepared(MarkSql).With("@expiresAt", expiresAt).With("@loginId", loginId).ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public Task<int> DeleteExpiredAsync(long cutoff, CancellationToken cancellationToken) =>
        connections.DeleteInBatchesAsync("used_logins", "expires_at < @cutoff", new Dictionary<string, object> { ["@cutoff"] = cutoff }, cancellationToken, key: "expires_at, login_id");
}

public sealed class PostgresUsedLoginRepository(PostgresDatabase database) : IUsedLoginRepository
{
    // A concurrent insert of the same key waits for the first to commit, then does nothing: exactly one sees a row inserted.
    private const string MarkSql = "INSERT INTO used_logins (expires_at, login_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

    public async Task<bool> TryMarkUsedAsync(long expiresAt, byte[] loginId, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(MarkSql, cancellationToken, expiresAt, loginId) == 1;

    public Task<int> DeleteExpiredAsync(long cutoff, CancellationToken cancellationToken) =>
        database.DeleteInBatchesByKeyAsync("used_logins", "expires_at, login_id", "expires_at < $1", cancellationToken, cutoff);
}
