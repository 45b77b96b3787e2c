using OAuthBroker.Storage;

namespace OAuthBroker.Lifecycle;

/// <summary>
/// A GitHub refresh token the broker handed to an instance, as stored: only its SHA-256, the instance it was issued
/// to, and the refresh that used it. <see cref="Answer"/> is the relay's response as issued (a signed JWT whose tokens
/// are encrypted to the instance), kept for the collapse window so that concurrent refreshes all get it. Times are
/// Unix milliseconds.
/// </summary>
public sealed record RefreshTokenRow(byte[] TokenHash, string InstanceId, long UserId, long IssuedAt, long ExpiresAt, long? ClaimedAt, long? AnsweredAt, string? Outcome, string? Answer)
{
    /// <summary>Set when an admin ended the user's access: the next refresh revokes the user's grant at GitHub instead of answering a token.</summary>
    public long? RevokeGrantAt { get; init; }

    /// <summary>Set when the user revoked the broker's GitHub App on GitHub (its webhook): the token is dead, and no refresh is tried.</summary>
    public long? RevokedAt { get; init; }

    /// <summary>Why <see cref="RevokedAt"/> is set: <c>access_token</c> when revoked with its access token; null for the app's revocation.</summary>
    public string? RevokedBy { get; init; }

    public override string ToString() => $"RefreshTokenRow {{ InstanceId = {InstanceId}, UserId = {UserId}, Outcome = {Outcome} }}";
}

/// <summary>
/// Where handed-out refresh tokens are recorded: one implementation per database. <see cref="TryClaimAsync"/> is the
/// collapse guarantee: a single atomic statement that one caller wins across every process sharing the database.
/// </summary>
public interface IRefreshTokenRepository
{
    /// <summary>Records a refresh token at issue time; a hash already recorded is left as it is.</summary>
    Task RecordAsync(byte[] tokenHash, string instanceId, long userId, long issuedAt, long expiresAt, CancellationToken cancellationToken);

    Task<RefreshTokenRow?> FindAsync(byte[] tokenHash, CancellationToken cancellationToken);

    /// <summary>
    /// Claims the one GitHub call for this token: true for exactly one caller while the token is unanswered and
    /// unclaimed (or its claim is older than <paramref name="abandonedBefore"/>: the replica that held it died).
    /// </summary>
    Task<bool> TryClaimAsync(byte[] tokenHash, long now, long abandonedBefore, CancellationToken cancellationToken);

    /// <summary>Stores the claimed refresh's outcome and response; afterwards every presentation of the token gets them.</summary>
    Task AnswerAsync(byte[] tokenHash, long now, string outcome, string answer, CancellationToken cancellationToken);

    /// <summary>Gives a claim back after a failure that did not spend the token (GitHub unreachable), so the instance may retry.</summary>
    Task ReleaseAsync(byte[] tokenHash, CancellationToken cancellationToken);

    /// <summary>Marks every unused refresh token of the user, so that the next refresh of any of them ends the user's grant at GitHub; returns how many.</summary>
    Task<int> RequestGrantRevocationAsync(long userId, long now, CancellationToken cancellationToken);

    /// <summary>Deletes rows of expired tokens and answers older than <paramref name="answeredBefore"/>; returns how many.</summary>
    Task<int> DeleteEndedAsync(long now, long answeredBefore, CancellationToken cancellationToken);

    /// <summary>Ends an unused refresh token because its access token was revoked (RFC 7009 section 2.1); true if it was live.</summary>
    Task<bool> RevokeWithAccessTokenAsync(byte[] tokenHash, long now, CancellationToken cancellationToken);
}

internal static class RefreshTokenRows
{
    public const string Columns = "token_hash, instance_id, user_id, issued_at, expires_at, claimed_at, answered_at, outcome, answer, revoke_grant_at, revoked_at, revoked_by";

    public const string RevokedWithAccessToken = "access_token";

    public static RefreshTokenRow Read(System.Data.Common.DbDataReader reader) => new(
        reader.GetFieldValue<byte[]>(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
        reader.IsDBNull(5) ? null : reader.GetInt64(5), reader.IsDBNull(6) ? null : reader.GetInt64(6),
        reader.IsDBNull(7) ? null : reader.GetString(7), reader.IsDBNull(8) ? null : reader.GetString(8))
    {
        RevokeGrantAt = reader.IsDBNull(9) ? null : reader.GetInt64(9),
        RevokedAt = reader.IsDBNull(10) ? null : reader.GetInt64(10),
        RevokedBy = reader.IsDBNull(11) ? null : reader.GetString(11),
    };
}

public sealed class SqliteRefreshTokenRepository(SqliteConnectionFactory connections) : IRefreshTokenRepository
{
    public async Task RecordAsync(byte[] tokenHash, string instanceId, long userId, long issuedAt, long expiresAt, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared("INSERT INTO refresh_tokens (token_hash, instance_id, user_id, issued_at, expires_at) VALUES (@hash, @instance, @user, @issued, @expires) ON CONFLICT (token_hash) DO NOTHING")
            .With("@hash", tokenHash).With("@instance", instanceId).With("@user", userId).With("@issued", issuedAt).With("@expires", expiresAt)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<RefreshTokenRow?> FindAsync(byte[] tokenHash, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var reader = await lease.Prepared($"SELECT {RefreshTokenRows.Columns} FROM refresh_tokens WHERE token_hash = @hash").With("@hash", tokenHash).ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? RefreshTokenRows.Read(reader) : null;
    }

    public async Task<bool> TryClaimAsync(byte[] tokenHash, long now, long abandonedBefore, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        return await lease.Prepared("UPDATE refresh_tokens SET claimed_at = @now WHERE token_hash = @hash AND answered_at IS NULL AND (claimed_at IS NULL OR claimed_at < @abandoned)")
            .With("@hash", tokenHash).With("@now", now).With("@abandoned", abandonedBefore)
            .ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task AnswerAsync(byte[] tokenHash, long now, string outcome, string answer, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared("UPDATE refresh_tokens SET answered_at = @now, outcome = @outcome, answer = @answer WHERE token_hash = @hash")
            .With("@hash", tokenHash).With("@now", now).With("@outcome", outcome).With("@answer", answer)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task ReleaseAsync(byte[] tokenHash, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared("UPDATE refresh_tokens SET claimed_at = NULL WHERE token_hash = @hash AND answered_at IS NULL").With("@hash", tokenHash).ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<int> RequestGrantRevocationAsync(long userId, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("UPDATE refresh_tokens SET revoke_grant_at = @now WHERE user_id = @user AND answered_at IS NULL AND expires_at >= @now")
            .With("@user", userId).With("@now", now).ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<int> DeleteEndedAsync(long now, long answeredBefore, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("DELETE FROM refresh_tokens WHERE expires_at < @now OR answered_at < @answered")
            .With("@now", now).With("@answered", answeredBefore).ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<bool> RevokeWithAccessTokenAsync(byte[] tokenHash, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("UPDATE refresh_tokens SET revoked_at = @now, revoked_by = @by WHERE token_hash = @hash AND revoked_at IS NULL AND answered_at IS NULL")
            .With("@now", now).With("@by", RefreshTokenRows.RevokedWithAccessToken).With("@hash", tokenHash).ExecuteNonQueryAsync(cancellationToken) == 1;
    }
}

public sealed class PostgresRefreshTokenRepository(PostgresDatabase database) : IRefreshTokenRepository
{
    public Task RecordAsync(byte[] tokenHash, string instanceId, long userId, long issuedAt, long expiresAt, CancellationToken cancellationToken) =>
        database.ExecuteAsync("INSERT INTO refresh_tokens (token_hash, instance_id, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash) DO NOTHING",
            cancellationToken, tokenHash, instanceId, userId, issuedAt, expiresAt);

    public async Task<RefreshTokenRow?> FindAsync(byte[] tokenHash, CancellationToken cancellationToken) =>
        (await database.QueryAsync($"SELECT {RefreshTokenRows.Columns} FROM refresh_tokens WHERE token_hash = $1", RefreshTokenRows.Read, cancellationToken, tokenHash)).SingleOrDefault();

    // One statement: under concurrent claims PostgreSQL re-checks the condition once the first has committed, so of
    // any number of refreshes on any number of replicas exactly one sees the token unclaimed.
    public async Task<bool> TryClaimAsync(byte[] tokenHash, long now, long abandonedBefore, CancellationToken cancellationToken) =>
        await database.ExecuteAsync("UPDATE refresh_tokens SET claimed_at = $2 WHERE token_hash = $1 AND answered_at IS NULL AND (claimed_at IS NULL OR claimed_at < $3)",
            cancellationToken, tokenHash, now, abandonedBefore) == 1;

    public Task AnswerAsync(byte[] tokenHash, long now, string outcome, string answer, CancellationToken cancellationToken) =>
        database.ExecuteAsync("UPDATE refresh_tokens SET answered_at = $2, outcome = $3, answer = $4 WHERE token_hash = $1", cancellationToken, tokenHash, now, outcome, answer);

    public Task ReleaseAsync(byte[] tokenHash, CancellationToken cancellationToken) =>
        database.ExecuteAsync("UPDATE refresh_tokens SET claimed_at = NULL WHERE token_hash = $1 AND answered_at IS NULL", cancellationToken, tokenHash);

    public Task<int> RequestGrantRevocationAsync(long userId, long now, CancellationToken cancellationToken) =>
        database.ExecuteAsync("UPDATE refresh_tokens SET revoke_grant_at = $2 WHERE user_id = $1 AND answered_at IS NULL AND expires_at >= $2", cancellationToken, userId, now);

    public Task<int> DeleteEndedAsync(long now, long answeredBefore, CancellationToken cancellationToken) =>
        database.ExecuteAsync("DELETE FROM refresh_tokens WHERE expires_at < $1 OR answered_at < $2", cancellationToken, now, answeredBefore);

    public async Task<bool> RevokeWithAccessTokenAsync(byte[] tokenHash, long now, CancellationToken cancellationToken) =>
        await database.ExecuteAsync("UPDATE refresh_tokens SET revoked_at = $2, revoked_by = $3 WHERE token_hash = $1 AND revoked_at IS NULL AND answered_at IS NULL",
            cancellationToken, tokenHash, now, RefreshTokenRows.RevokedWithAccessToken) == 1;
}
