using System.Security.Cryptography;
using OAuthBroker.Storage;

namespace OAuthBroker.Login;

/// <summary>A pending login as stored: hashes of its secrets, never the secrets. Times are Unix milliseconds.</summary>
public sealed record PendingLoginRow(
    long Id, byte[] StateHash, byte[] BrowserHash, string InstanceId, string RedirectUri, string? InstanceState, string Scope,
    string ResponseMode, long CreatedAt, long ExpiresAt, long? ConsumedAt)
{
    /// <summary>An OpenID Connect client's request (JSON: nonce, PKCE challenge, scopes); null for the broker's own redirect.</summary>
    public string? Request { get; init; }

    public override string ToString() => $"PendingLoginRow {{ Id = {Id}, InstanceId = {InstanceId} }}";
}

/// <summary>
/// Where pending logins are kept: one implementation per database. <see cref="PendingLoginStore"/> holds the rules;
/// this holds the rows. <see cref="ConsumeAsync"/> is the one-time guarantee: its consume must be a single atomic
/// statement that succeeds for exactly one caller across every process sharing the database.
/// </summary>
public interface IPendingLoginRepository
{
    Task InsertAsync(PendingLoginRow row, CancellationToken cancellationToken);

    /// <summary>
    /// Finds the login whose state hashes to <paramref name="stateHash"/> among those expiring at
    /// <paramref name="expiresAt"/> (logins started in the same millisecond, a handful at most) and, if it belongs to
    /// the browser whose secret hashes to <paramref name="browserHash"/> and is neither consumed nor expired at
    /// <paramref name="now"/>, marks it consumed, in one round trip. Returns the row as it was before, and whether this
    /// caller consumed it (false for every other caller).
    /// </summary>
    Task<ConsumeAttempt> ConsumeAsync(long expiresAt, byte[] stateHash, byte[] browserHash, long now, CancellationToken cancellationToken);

    /// <summary>Deletes logins that expired, or were consumed, before <paramref name="cutoff"/>; all of them expire before <paramref name="horizon"/>.</summary>
    Task<int> DeleteEndedAsync(long cutoff, long horizon, CancellationToken cancellationToken);
}

/// <summary>The login a state names as it was found (null: none), and whether this attempt consumed it.</summary>
public readonly record struct ConsumeAttempt(PendingLoginRow? Row, bool Consumed);

public sealed class SqlitePendingLoginRepository(SqliteConnectionFactory connections) : IPendingLoginRepository
{
    private const string InsertSql = """
        INSERT INTO pending_logins (state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, created_at, expires_at, response_mode, request)
        VALUES (@stateHash, @browserHash, @instanceId, @redirectUri, @instanceState, @scope, @createdAt, @expiresAt, @responseMode, @request)
        """;

    private const string FindSql = """
        SELECT id, state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, response_mode, created_at, expires_at, consumed_at, request
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
            .With("@request", row.Request)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<ConsumeAttempt> ConsumeAsync(long expiresAt, byte[] stateHash, byte[] browserHash, long now, CancellationToken cancellationToken)
    {
        // One lease: the look-up and the consume go to SQLite back to back, on the one connection every store shares.
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        PendingLoginRow? row = null;
        await using (var reader = await lease.Prepared(FindSql).With("@expiresAt", expiresAt).ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var candidate = PendingLoginRows.Read(reader);
                row = CryptographicOperations.FixedTimeEquals(candidate.StateHash, stateHash) ? candidate : row;
            }
        }

        if (row is null || !CryptographicOperations.FixedTimeEquals(row.BrowserHash, browserHash) || row.ConsumedAt is not null || row.ExpiresAt <= now)
        {
            return new ConsumeAttempt(row, Consumed: false);
        }

        return new ConsumeAttempt(row, await lease.Prepared(ConsumeSql).With("@id", row.Id).With("@now", now).ExecuteNonQueryAsync(cancellationToken) == 1);
    }

    public Task<int> DeleteEndedAsync(long cutoff, long horizon, CancellationToken cancellationToken) =>
        connections.DeleteInBatchesAsync(
            "pending_logins", "expires_at < @horizon AND (expires_at < @cutoff OR consumed_at < @cutoff)",
            new Dictionary<string, object> { ["@cutoff"] = cutoff, ["@horizon"] = horizon }, cancellationToken);
}

public sealed class PostgresPendingLoginRepository(PostgresDatabase database) : IPendingLoginRepository
{
    private const string InsertSql = """
        INSERT INTO pending_logins (state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, created_at, expires_at, response_mode, request)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """;

    // One statement and one round trip: the row as it was, and the consume. Under concurrent updates of the row
    // PostgreSQL re-checks the UPDATE's condition once the first has committed, so of any number of replays on any
    // number of replicas exactly one sees consumed_at still NULL. The hashes compared here are SHA-256 of 256-bit
    // random secrets, so the comparison's timing tells nothing an attacker could use; the store compares them again
    // in constant time.
    private const string ConsumeSql = """
        WITH found AS (
            SELECT id, state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, response_mode, created_at, expires_at, consumed_at, request
            FROM pending_logins WHERE expires_at = $1 AND state_hash = $2
        ), consumed AS (
            UPDATE pending_logins SET consumed_at = $4
            WHERE id = (SELECT id FROM found) AND browser_hash = $3 AND consumed_at IS NULL AND expires_at > $4
            RETURNING id
        )
        SELECT found.*, EXISTS (SELECT 1 FROM consumed) FROM found
        """;

    public Task InsertAsync(PendingLoginRow row, CancellationToken cancellationToken) =>
        database.ExecuteAsync(InsertSql, cancellationToken, row.StateHash, row.BrowserHash, row.InstanceId, row.RedirectUri, row.InstanceState, row.Scope, row.CreatedAt, row.ExpiresAt, row.ResponseMode, row.Request);

    public async Task<ConsumeAttempt> ConsumeAsync(long expiresAt, byte[] stateHash, byte[] browserHash, long now, CancellationToken cancellationToken)
    {
        var found = await database.QueryAsync(ConsumeSql, reader => new ConsumeAttempt(PendingLoginRows.Read(reader), reader.GetBoolean(12)),
            cancellationToken, expiresAt, stateHash, browserHash, now);
        return found.Count == 0 ? default : found[0];
    }

    public Task<int> DeleteEndedAsync(long cutoff, long horizon, CancellationToken cancellationToken) =>
        database.DeleteInBatchesAsync("pending_logins", "expires_at < $2 AND (expires_at < $1 OR consumed_at < $1)", cancellationToken, cutoff, horizon);
}

/// <summary>The column order both backends select in.</summary>
internal static class PendingLoginRows
{
    public static PendingLoginRow Read(System.Data.Common.DbDataReader reader) => new(
        reader.GetInt64(0), reader.GetFieldValue<byte[]>(1), reader.GetFieldValue<byte[]>(2), reader.GetString(3), reader.GetString(4),
        reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetString(6), reader.GetString(7), reader.GetInt64(8), reader.GetInt64(9),
        reader.IsDBNull(10) ? null : reader.GetInt64(10))
    {
        Request = reader.IsDBNull(11) ? null : reader.GetString(11),
    };
}
