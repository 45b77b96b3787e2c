using Npgsql;
using OAuthBroker.Storage;

namespace OAuthBroker.Tokens;

/// <summary>A signing key as stored: its private key encrypted with Data Protection. Times are Unix milliseconds.</summary>
public sealed record StoredSigningKey(string KeyId, string Algorithm, byte[] ProtectedKey, long CreatedAt, long? ActivatesAt, long? RetiredAt)
{
    public override string ToString() => $"StoredSigningKey {{ KeyId = {KeyId}, Algorithm = {Algorithm} }}";

    internal const string Columns = "kid, algorithm, protected_key, created_at, activates_at, retired_at";

    internal static StoredSigningKey Read(System.Data.Common.DbDataReader reader) => new(
        reader.GetString(0), reader.GetString(1), reader.GetFieldValue<byte[]>(2), reader.GetInt64(3),
        reader.IsDBNull(4) ? null : reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetInt64(5));
}

/// <summary>Where signing keys are kept: one implementation per database.</summary>
public interface ISigningKeyRepository
{
    /// <summary>Keys not retired, or retired after <paramref name="honouredSince"/>; newest first.</summary>
    Task<IReadOnlyList<StoredSigningKey>> ListHonouredAsync(long honouredSince, CancellationToken cancellationToken);

    Task<IReadOnlyList<StoredSigningKey>> ListAllAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Inserts <paramref name="key"/> unless a key of its algorithm is active or to come (not retired) at
    /// <paramref name="now"/>, atomically with that check across every process sharing the database; false when one
    /// was (another replica made it first, or rotated one in).
    /// </summary>
    Task<bool> InsertIfNoneActiveAsync(StoredSigningKey key, long now, CancellationToken cancellationToken);

    /// <summary>In one transaction: retires every key honoured past <paramref name="retireAt"/> at that time, and inserts <paramref name="key"/>.</summary>
    Task RotateAsync(StoredSigningKey key, long retireAt, CancellationToken cancellationToken);
}

public sealed class SqliteSigningKeyRepository(SqliteConnectionFactory connections) : ISigningKeyRepository
{
    private const string InsertSql = "INSERT INTO signing_keys (kid, algorithm, protected_key, created_at, activates_at) VALUES (@kid, @algorithm, @protectedKey, @createdAt, @activatesAt)";

    private const string ActiveCountSql = """
        SELECT COUNT(*) FROM signing_keys
        WHERE algorithm = @algorithm AND (retired_at IS NULL OR retired_at > @now)
        """;

    public Task<IReadOnlyList<StoredSigningKey>> ListHonouredAsync(long honouredSince, CancellationToken cancellationToken) =>
        ReadAsync($"SELECT {StoredSigningKey.Columns} FROM signing_keys WHERE retired_at IS NULL OR retired_at > @honouredSince ORDER BY created_at DESC", honouredSince, cancellationToken);

    public Task<IReadOnlyList<StoredSigningKey>> ListAllAsync(CancellationToken cancellationToken) =>
        ReadAsync($"SELECT {StoredSigningKey.Columns} FROM signing_keys ORDER BY created_at DESC", null, cancellationToken);

    public async Task<bool> InsertIfNoneActiveAsync(StoredSigningKey key, long now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        await using var lease = await connections.OpenAsync(cancellationToken);
        // Microsoft.Data.Sqlite begins IMMEDIATE: the write lock comes first, so a second process (the CLI) checks only
        // after this one has committed.
        await using var transaction = await lease.Connection.BeginTransactionAsync(cancellationToken);
        await using (var count = lease.Connection.CreateCommand())
        {
            count.Transaction = (Microsoft.Data.Sqlite.SqliteTransaction)transaction;
            count.CommandText = ActiveCountSql;
            count.With("@algorithm", key.Algorithm).With("@now", now);
            if ((long)(await count.ExecuteScalarAsync(cancellationToken))! > 0)
            {
                return false;
            }
        }

        await InsertAsync(lease, (Microsoft.Data.Sqlite.SqliteTransaction)transaction, key, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    public async Task RotateAsync(StoredSigningKey key, long retireAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var transaction = await lease.Connection.BeginTransactionAsync(cancellationToken);
        await using (var retire = lease.Connection.CreateCommand())
        {
            retire.Transaction = (Microsoft.Data.Sqlite.SqliteTransaction)transaction;
            retire.CommandText = "UPDATE signing_keys SET retired_at = @retireAt WHERE retired_at IS NULL OR retired_at > @retireAt";
            await retire.With("@retireAt", retireAt).ExecuteNonQueryAsync(cancellationToken);
        }

        await InsertAsync(lease, (Microsoft.Data.Sqlite.SqliteTransaction)transaction, key, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    // Bound by hand: Dapper.AOT expands a byte[] parameter as a list, not as one blob.
    private static Task<int> InsertAsync(SqliteLease lease, Microsoft.Data.Sqlite.SqliteTransaction transaction, StoredSigningKey key, CancellationToken cancellationToken) =>
        lease.Prepared(InsertSql, transaction)
            .With("@kid", key.KeyId)
            .With("@algorithm", key.Algorithm)
            .With("@protectedKey", key.ProtectedKey)
            .With("@createdAt", key.CreatedAt)
            .With("@activatesAt", key.ActivatesAt)
            .ExecuteNonQueryAsync(cancellationToken);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2100", Justification = "Only this class's constant SQL.")]
    private async Task<IReadOnlyList<StoredSigningKey>> ReadAsync(string sql, long? honouredSince, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenReaderAsync(cancellationToken);
        await using var command = lease.Connection.CreateCommand();
        command.CommandText = sql;
        if (honouredSince is { } since)
        {
            command.With("@honouredSince", since);
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var keys = new List<StoredSigningKey>();
        while (await reader.ReadAsync(cancellationToken))
        {
            keys.Add(StoredSigningKey.Read(reader));
        }

        return keys;
    }
}

public sealed class PostgresSigningKeyRepository(PostgresDatabase database) : ISigningKeyRepository
{
    /// <summary>Serialises the creation of keys across replicas: the check and the insert run under it.</summary>
    private const long KeyCreationLock = 0x4F41_7574_684B_6579; // "OAuthKey"

    private const string InsertSql = "INSERT INTO signing_keys (kid, algorithm, protected_key, created_at, activates_at) VALUES ($1, $2, $3, $4, $5)";

    private const string ActiveCountSql = """
        SELECT COUNT(*) FROM signing_keys
        WHERE algorithm = $1 AND (retired_at IS NULL OR retired_at > $2)
        """;

    public async Task<IReadOnlyList<StoredSigningKey>> ListHonouredAsync(long honouredSince, CancellationToken cancellationToken) =>
        await database.QueryAsync($"SELECT {StoredSigningKey.Columns} FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC", StoredSigningKey.Read, cancellationToken, honouredSince);

    public async Task<IReadOnlyList<StoredSigningKey>> ListAllAsync(CancellationToken cancellationToken) =>
        await database.QueryAsync($"SELECT {StoredSigningKey.Columns} FROM signing_keys ORDER BY created_at DESC", StoredSigningKey.Read, cancellationToken);

    public Task<bool> InsertIfNoneActiveAsync(StoredSigningKey key, long now, CancellationToken cancellationToken) =>
        InsertUnderLockAsync(key, async (connection, transaction) =>
        {
            await using var count = PostgresDatabase.Command(connection, ActiveCountSql, [key.Algorithm, now], transaction);
            return (long)(await count.ExecuteScalarAsync(cancellationToken))! == 0;
        }, cancellationToken);

    public Task RotateAsync(StoredSigningKey key, long retireAt, CancellationToken cancellationToken) =>
        InsertUnderLockAsync(key, async (connection, transaction) =>
        {
            await PostgresDatabase.ExecuteOnAsync(connection, transaction, "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL OR retired_at > $1", cancellationToken, retireAt);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Under the key lock, in one transaction: <paramref name="before"/> (which may decline), then the insert, then the
    /// announcement, delivered at commit, on which every replica reloads its keys at once instead of at its next refresh.
    /// </summary>
    private async Task<bool> InsertUnderLockAsync(StoredSigningKey key, Func<NpgsqlConnection, NpgsqlTransaction, Task<bool>> before, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await PostgresDatabase.ExecuteOnAsync(connection, transaction, $"SELECT pg_advisory_xact_lock({KeyCreationLock})", cancellationToken);
        if (!await before(connection, transaction))
        {
            return false;
        }

        await PostgresDatabase.ExecuteOnAsync(connection, transaction, InsertSql, cancellationToken, key.KeyId, key.Algorithm, key.ProtectedKey, key.CreatedAt, key.ActivatesAt);
        await PostgresDatabase.ExecuteOnAsync(connection, transaction, $"NOTIFY {DatabaseChanges.SigningKeys}", cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return true;
    }
}
