using OAuthBroker.Storage;

namespace OAuthBroker.Oidc;

/// <summary>
/// A one-time authorization code as stored: its SHA-256 only, the client it was issued to, the user, and what its
/// redemption needs (<see cref="GrantJson"/>: redirect URI, PKCE challenge, nonce, scopes, and the GitHub token only as
/// a JWE to the instance). Times are Unix milliseconds.
/// </summary>
public sealed record AuthorizationCodeRow(byte[] CodeHash, string InstanceId, long UserId, string GrantJson, long CreatedAt, long ExpiresAt, long? ConsumedAt, long? ReplayedAt)
{
    public override string ToString() => $"AuthorizationCodeRow {{ InstanceId = {InstanceId}, UserId = {UserId} }}";
}

/// <summary>What a redemption found: the code as it was (null: unknown), and whether this caller redeemed it.</summary>
public readonly record struct CodeRedemption(AuthorizationCodeRow? Row, bool Redeemed);

/// <summary>
/// Where authorization codes are kept, one implementation per database. <see cref="RedeemAsync"/> is the one-time
/// guarantee across replicas: a single atomic statement that one caller wins; every later presentation marks the code
/// replayed, which revokes what its redemption issued (RFC 6749 section 4.1.2).
/// </summary>
public interface IAuthorizationCodeRepository
{
    Task InsertAsync(AuthorizationCodeRow row, CancellationToken cancellationToken);

    /// <summary>
    /// Redeems the code for <paramref name="instanceId"/> if it is that client's, unexpired and unredeemed. A code of
    /// another client is left as it was, so its own client can still redeem it.
    /// </summary>
    Task<CodeRedemption> RedeemAsync(byte[] codeHash, string instanceId, long now, CancellationToken cancellationToken);

    /// <summary>True when the code was presented again after its redemption: what it issued no longer counts.</summary>
    Task<bool> IsReplayedAsync(byte[] codeHash, CancellationToken cancellationToken);

    /// <summary>Deletes codes that expired before <paramref name="before"/>, except replayed ones, kept until <paramref name="replayedBefore"/>.</summary>
    Task<int> DeleteEndedAsync(long before, long replayedBefore, CancellationToken cancellationToken);
}

internal static class AuthorizationCodeRows
{
    public const string Columns = "code_hash, instance_id, user_id, grant_json, created_at, expires_at, consumed_at, replayed_at";

    public static AuthorizationCodeRow Read(System.Data.Common.DbDataReader reader) => new(
        reader.GetFieldValue<byte[]>(0), reader.GetString(1), reader.GetInt64(2), reader.GetString(3), reader.GetInt64(4), reader.GetInt64(5),
        reader.IsDBNull(6) ? null : reader.GetInt64(6), reader.IsDBNull(7) ? null : reader.GetInt64(7));
}

public sealed class SqliteAuthorizationCodeRepository(SqliteConnectionFactory connections) : IAuthorizationCodeRepository
{
    public async Task InsertAsync(AuthorizationCodeRow row, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(row);
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared("INSERT INTO authorization_codes (code_hash, instance_id, user_id, grant_json, created_at, expires_at) VALUES (@hash, @instance, @user, @grant, @created, @expires)")
            .With("@hash", row.CodeHash).With("@instance", row.InstanceId).With("@user", row.UserId).With("@grant", row.GrantJson).With("@created", row.CreatedAt).With("@expires", row.ExpiresAt)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<CodeRedemption> RedeemAsync(byte[] codeHash, string instanceId, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await using (var reader = await lease.Prepared($"UPDATE authorization_codes SET consumed_at = @now WHERE code_hash = @hash AND instance_id = @instance AND consumed_at IS NULL AND expires_at > @now RETURNING {AuthorizationCodeRows.Columns}")
            .With("@hash", codeHash).With("@instance", instanceId).With("@now", now).ExecuteReaderAsync(cancellationToken))
        {
            if (await reader.ReadAsync(cancellationToken))
            {
                var row = AuthorizationCodeRows.Read(reader);
                while (await reader.ReadAsync(cancellationToken))
                {
                }

                return new CodeRedemption(row, Redeemed: true);
            }
        }

        // Not redeemed here: a replay of a redeemed code marks it, so what the first redemption issued is revoked; the
        // grant it no longer needs goes, since a replayed code is kept as long as its refresh tokens may live.
        await using var replay = await lease.Prepared($"UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, @now), grant_json = '{{}}' WHERE code_hash = @hash AND instance_id = @instance AND consumed_at IS NOT NULL RETURNING {AuthorizationCodeRows.Columns}")
            .With("@hash", codeHash).With("@instance", instanceId).With("@now", now).ExecuteReaderAsync(cancellationToken);
        AuthorizationCodeRow? replayed = null;
        while (await replay.ReadAsync(cancellationToken))
        {
            replayed = AuthorizationCodeRows.Read(replay);
        }

        return new CodeRedemption(replayed, Redeemed: false);
    }

    public async Task<bool> IsReplayedAsync(byte[] codeHash, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("SELECT replayed_at FROM authorization_codes WHERE code_hash = @hash").With("@hash", codeHash).ExecuteScalarAsync(cancellationToken) is long;
    }

    public async Task<int> DeleteEndedAsync(long before, long replayedBefore, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("DELETE FROM authorization_codes WHERE expires_at < @before AND (replayed_at IS NULL OR replayed_at < @replayed)")
            .With("@before", before).With("@replayed", replayedBefore).ExecuteNonQueryAsync(cancellationToken);
    }
}

public sealed class PostgresAuthorizationCodeRepository(PostgresDatabase database) : IAuthorizationCodeRepository
{
    public Task InsertAsync(AuthorizationCodeRow row, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(row);
        return database.ExecuteAsync("INSERT INTO authorization_codes (code_hash, instance_id, user_id, grant_json, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            cancellationToken, row.CodeHash, row.InstanceId, row.UserId, row.GrantJson, row.CreatedAt, row.ExpiresAt);
    }

    // The redemption is one statement: under concurrent redemptions PostgreSQL re-checks consumed_at once the first
    // has committed, so exactly one caller redeems. The replay's mark is a statement of its own, with a snapshot that
    // sees a concurrent winner's commit.
    public async Task<CodeRedemption> RedeemAsync(byte[] codeHash, string instanceId, long now, CancellationToken cancellationToken)
    {
        var redeemed = await database.QueryAsync(
            $"UPDATE authorization_codes SET consumed_at = $2 WHERE code_hash = $1 AND instance_id = $3 AND consumed_at IS NULL AND expires_at > $2 RETURNING {AuthorizationCodeRows.Columns}",
            AuthorizationCodeRows.Read, cancellationToken, codeHash, now, instanceId);
        if (redeemed.Count == 1)
        {
            return new CodeRedemption(redeemed[0], Redeemed: true);
        }

        var replayed = await database.QueryAsync(
            $"UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $2), grant_json = '{{}}' WHERE code_hash = $1 AND instance_id = $3 AND consumed_at IS NOT NULL RETURNING {AuthorizationCodeRows.Columns}",
            AuthorizationCodeRows.Read, cancellationToken, codeHash, now, instanceId);
        return new CodeRedemption(replayed.SingleOrDefault(), Redeemed: false);
    }

    public async Task<bool> IsReplayedAsync(byte[] codeHash, CancellationToken cancellationToken) =>
        (await database.QueryAsync("SELECT replayed_at IS NOT NULL FROM authorization_codes WHERE code_hash = $1", reader => reader.GetBoolean(0), cancellationToken, codeHash)).SingleOrDefault();

    public Task<int> DeleteEndedAsync(long before, long replayedBefore, CancellationToken cancellationToken) =>
        database.ExecuteAsync("DELETE FROM authorization_codes WHERE expires_at < $1 AND (replayed_at IS NULL OR replayed_at < $2)", cancellationToken, before, replayedBefore);
}
