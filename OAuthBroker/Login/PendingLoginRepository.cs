using OAuthBroker.Storage;

namespace OAuthBroker.Login;

/// <summary>A pending login as stored: hashes of its secrets, never the secrets. Times are Unix milliseconds.</summary>
public sealed record PendingLoginRow(
    long Id, byte[] StateHash, byte[] BrowserHash, string InstanceId, string RedirectUri, string? InstanceState, string Scope,
    string ResponseMode, long CreatedAt, long ExpiresAt, long? ConsumedAt)
{
    public override string ToString() => $"PendingLoginRow {{ Id = {Id}, InstanceId = {InstanceId} }}";
}

/// <summary>
/// Where pending logins are kept: one implementation per database. <see cref="PendingLoginStore"/> holds the rules;
/// this holds the rows. <see cref="TryMarkConsumedAsync"/> is the one-time guarantee and must be a single atomic
/// statement that succeeds for exactly one caller across every process sharing the database.
/// </summary>
public interface IPendingLoginRepository
{
    Task InsertAsync(PendingLoginRow row, CancellationToken cancellationToken);

    /// <summary>The logins that expire at <paramref name="expiresAt"/>: those started in the same millisecond, a handful at most.</summary>
    Task<IReadOnlyList<PendingLoginRow>> FindByExpiryAsync(long expiresAt, CancellationToken cancellationToken);

    /// <summary>Marks the login consumed if it is neither consumed nor expired at <paramref name="now"/>; false for every other caller.</summary>
    Task<bool> TryMarkConsumedAsync(long id, long now, CancellationToken cancellationToken);

    /// <summary>Deletes logins that expired, or were consumed, before <paramref name="cutoff"/>; all of them expire before <paramref name="horizon"/>.</summary>
    Task<int> DeleteEndedAsync(long cutoff, long horizon, CancellationToken cancellationToken);
}

public sealed class SqlitePendingLoginRepository(SqliteConnectionFactory connections) : IPendingLoginRepository
{
    private const string InsertSql = """
        INSERT INTO pending_logins (state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, created_at, expires_at, response_mode)
        VALUES (@stateHash, @browserHash, @instanceId, @redirectUri, @instanceState, @scope, @createdAt, @expiresAt, @responseMode)
        """;

    private const string FindSql = """
        SELECT id, state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, response_mode, created_at, expires_at, consumed_at
        FROM pending_logins WHERE expires_at = @expiresAt
        """;

    private const string ConsumeSql = "UPDATE pending_logins SET consumed_at = @now WHERE id = @id AND consumed_at IS NULL AND expires_at > @now";

    public async Task InsertAsync(PendingLoginRow row, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared(InsertSql)
            .With("@stateHash", row.StateHash)
            .With("@browserHash", row.BrowserHash)
            .With("@instanceId", row.InstanceId)
            .With("@redirectUri", row.RedirectUri)
            .With("@instanceState", row.InstanceState)
            .With("@scope", row.Scope)
            .With("@createdAt", row.CreatedAt)
            .With("@expiresAt", row.ExpiresAt)
            .With("@responseMode", row.ResponseMode)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<PendingLoginRow>> FindByExpiryAsync(long expiresAt, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await using var reader = await lease.Prepared(FindSql).With("@expiresAt", expiresAt).ExecuteReaderAsync(cancellationToken);
        var rows = new List<PendingLoginRow>(1);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(PendingLoginRows.Read(reader));
        }

        return rows;
    }

    public async Task<bool> TryMarkConsumedAsync(long id, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        return await lease.Prepared(ConsumeSql).With("@id", id).With("@now", now).ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public Task<int> DeleteEndedAsync(long cutoff, long horizon, CancellationToken cancellationToken) =>
        connections.DeleteInBatchesAsync(
            "pending_logins", "expires_at < @horizon AND (expires_at < @cutoff OR consumed_at < @cutoff)",
            new Dictionary<string, object> { ["@cutoff"] = cutoff, ["@horizon"] = horizon }, cancellationToken);
}

public sealed class PostgresPendingLoginRepository(PostgresDatabase database) : IPendingLoginRepository
{
    private const string InsertSql = """
        INSERT INTO pending_logins (state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, created_at, expires_at, response_mode)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """;

    private const string FindSql = """
        SELECT id, state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, response_mode, created_at, expires_at, consumed_at
        FROM pending_logins WHERE expires_at = $1
        """;

    // One statement: under concurrent updates of the row PostgreSQL re-checks the condition after the first commits,
    // so of any number of replays on any number of replicas exactly one sees consumed_at still NULL.
    private const string ConsumeSql = "UPDATE pending_logins SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2";

    public Task InsertAsync(PendingLoginRow row, CancellationToken cancellationToken) =>
        database.ExecuteAsync(InsertSql, cancellationToken, row.StateHash, row.BrowserHash, row.InstanceId, row.RedirectUri, row.InstanceState, row.Scope, row.CreatedAt, row.ExpiresAt, row.ResponseMode);

    public async Task<IReadOnlyList<PendingLoginRow>> FindByExpiryAsync(long expiresAt, CancellationToken cancellationToken) =>
        await database.QueryAsync(FindSql, PendingLoginRows.Read, cancellationToken, expiresAt);

    public async Task<bool> TryMarkConsumedAsync(long id, long now, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(ConsumeSql, cancellationToken, id, now) == 1;

    public Task<int> DeleteEndedAsync(long cutoff, long horizon, CancellationToken cancellationToken) =>
        database.DeleteInBatchesAsync("pending_logins", "expires_at < $2 AND (expires_at < $1 OR consumed_at < $1)", cancellationToken, cutoff, horizon);
}

/// <summary>The column order both backends select in.</summary>
internal static class PendingLoginRows
{
    public static PendingLoginRow Read(System.Data.Common.DbDataReader reader) => new(
        reader.GetInt64(0), reader.GetFieldValue<byte[]>(1), reader.GetFieldValue<byte[]>(2), reader.GetString(3), reader.GetString(4),
        reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetString(6), reader.GetString(7), reader.GetInt64(8), reader.GetInt64(9),
        reader.IsDBNull(10) ? null : reader.GetInt64(10));
}
