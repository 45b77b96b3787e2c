using OAuthBroker.Storage;

namespace OAuthBroker.Lifecycle;

/// <summary>
/// Which instance each GitHub access token went to, by the token's SHA-256 only: what lets an instance revoke the
/// tokens it was given and no others. One implementation per database.
/// </summary>
public interface IAccessTokenRepository
{
    /// <param name="refreshHash">The SHA-256 of the refresh token issued with it, when the broker relays that one's refreshes.</param>
    Task RecordAsync(byte[] tokenHash, string instanceId, long userId, long issuedAt, long expiresAt, byte[]? refreshHash, CancellationToken cancellationToken);

    /// <summary>The instance the token was issued to; null when the broker did not hand it out or has forgotten it.</summary>
    Task<string?> FindInstanceAsync(byte[] tokenHash, CancellationToken cancellationToken);

    /// <summary>The hash of the refresh token issued with the access token, if one was recorded.</summary>
    Task<byte[]?> FindRefreshHashAsync(byte[] tokenHash, CancellationToken cancellationToken);

    Task DeleteAsync(byte[] tokenHash, CancellationToken cancellationToken);

    Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken);
}

public sealed class SqliteAccessTokenRepository(SqliteConnectionFactory connections) : IAccessTokenRepository
{
    public async Task RecordAsync(byte[] tokenHash, string instanceId, long userId, long issuedAt, long expiresAt, byte[]? refreshHash, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared("INSERT INTO access_tokens (token_hash, instance_id, user_id, issued_at, expires_at, refresh_hash) VALUES (@hash, @instance, @user, @issued, @expires, @refresh) ON CONFLICT (token_hash) DO NOTHING")
            .With("@hash", tokenHash).With("@instance", instanceId).With("@user", userId).With("@issued", issuedAt).With("@expires", expiresAt).With("@refresh", refreshHash)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<byte[]?> FindRefreshHashAsync(byte[] tokenHash, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("SELECT refresh_hash FROM access_tokens WHERE token_hash = @hash").With("@hash", tokenHash).ExecuteScalarAsync(cancellationToken) as byte[];
    }

    public async Task<string?> FindInstanceAsync(byte[] tokenHash, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("SELECT instance_id FROM access_tokens WHERE token_hash = @hash").With("@hash", tokenHash).ExecuteScalarAsync(cancellationToken) as string;
    }

    public async Task DeleteAsync(byte[] tokenHash, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared("DELETE FROM access_tokens WHERE token_hash = @hash").With("@hash", tokenHash).ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("DELETE FROM access_tokens WHERE expires_at < @now").With("@now", now).ExecuteNonQueryAsync(cancellationToken);
    }
}

public sealed class PostgresAccessTokenRepository(PostgresDatabase database) : IAccessTokenRepository
{
    public Task RecordAsync(byte[] tokenHash, string instanceId, long userId, long issuedAt, long expiresAt, byte[]? refreshHash, CancellationToken cancellationToken) =>
        database.ExecuteAsync("INSERT INTO access_tokens (token_hash, instance_id, user_id, issued_at, expires_at, refresh_hash) VALUES ($1, $2, $3, $4, $5, $6::bytea) ON CONFLICT (token_hash) DO NOTHING",
            cancellationToken, tokenHash, instanceId, userId, issuedAt, expiresAt, refreshHash);

    public async Task<byte[]?> FindRefreshHashAsync(byte[] tokenHash, CancellationToken cancellationToken) =>
        (await database.QueryAsync("SELECT refresh_hash FROM access_tokens WHERE token_hash = $1", reader => reader.IsDBNull(0) ? null : reader.GetFieldValue<byte[]>(0), cancellationToken, tokenHash)).SingleOrDefault();

    public async Task<string?> FindInstanceAsync(byte[] tokenHash, CancellationToken cancellationToken) =>
        (await database.QueryAsync("SELECT instance_id FROM access_tokens WHERE token_hash = $1", reader => reader.GetString(0), cancellationToken, tokenHash)).SingleOrDefault();

    public Task DeleteAsync(byte[] tokenHash, CancellationToken cancellationToken) =>
        database.ExecuteAsync("DELETE FROM access_tokens WHERE token_hash = $1", cancellationToken, tokenHash);

    public Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken) =>
        database.ExecuteAsync("DELETE FROM access_tokens WHERE expires_at < $1", cancellationToken, now);
}
