using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using OAuthBroker.Storage;

namespace OAuthBroker.Admin;

/// <summary>An admin as GitHub knows them: the numeric id is who they are; the login is only what they are called.</summary>
public sealed record AdminIdentity(long GitHubId, string Login);

/// <summary>
/// Admin sessions kept server-side, so that signing out or leaving the admin list ends a session at once rather than
/// when its cookie expires; the cookie carries only a random session id, stored as its SHA-256. Also the pins of
/// admins named by login: the GitHub id a login belonged to when it first signed in, so that a renamed login claimed
/// by someone else is not an admin.
/// </summary>
public sealed partial class AdminSessionStore(IAdminSessionRepository rows, TimeProvider time, ILogger<AdminSessionStore> logger) : IPurgeable
{
    public string Name => "admin_sessions";

    public async Task<string> CreateAsync(AdminIdentity admin, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        var id = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var now = time.GetUtcNow();
        await rows.InsertAsync(Hash(id), admin, now.ToUnixTimeMilliseconds(), now.Add(lifetime).ToUnixTimeMilliseconds(), cancellationToken);
        return id;
    }

    /// <summary>The admin of a session that is neither signed out nor expired.</summary>
    public async Task<AdminIdentity?> FindActiveAsync(string? sessionId, CancellationToken cancellationToken) =>
        sessionId is { Length: 43 } ? await rows.FindActiveAsync(Hash(sessionId), time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken) : null;

    public async Task RevokeAsync(string? sessionId, CancellationToken cancellationToken)
    {
        if (sessionId is { Length: 43 })
        {
            await rows.RevokeAsync(Hash(sessionId), time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
        }
    }

    /// <summary>
    /// Whether <paramref name="login"/> belongs to <paramref name="gitHubId"/>: the first sign-in under a login pins it to
    /// that id; a later one with another id (the login was renamed and claimed again) is not that admin.
    /// </summary>
    public async Task<bool> MatchesPinAsync(string login, long gitHubId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(login);
        var key = login.ToLowerInvariant();
        if (await rows.TryPinAsync(key, gitHubId, time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken))
        {
            Log.Pinned(logger, login, gitHubId);
            return true;
        }

        return await rows.PinnedIdAsync(key, cancellationToken) == gitHubId;
    }

    public Task<int> PurgeAsync(CancellationToken cancellationToken) => rows.DeleteExpiredAsync(time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);

    private static byte[] Hash(string sessionId) => SHA256.HashData(Encoding.ASCII.GetBytes(sessionId));

    private static partial class Log
    {
        [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "Admin login {GitHubLogin} is pinned to GitHub id {GitHubId}; name admins by id instead: Admin:GitHubIds")]
        public static partial void Pinned(ILogger logger, string gitHubLogin, long gitHubId);
    }
}

/// <summary>Where admin sessions and login pins are kept: one implementation per database. Times are Unix milliseconds.</summary>
public interface IAdminSessionRepository
{
    Task InsertAsync(byte[] idHash, AdminIdentity admin, long createdAt, long expiresAt, CancellationToken cancellationToken);

    Task<AdminIdentity?> FindActiveAsync(byte[] idHash, long now, CancellationToken cancellationToken);

    Task RevokeAsync(byte[] idHash, long now, CancellationToken cancellationToken);

    /// <summary>Pins <paramref name="login"/> to <paramref name="gitHubId"/> unless it is pinned already; true when this call pinned it.</summary>
    Task<bool> TryPinAsync(string login, long gitHubId, long now, CancellationToken cancellationToken);

    Task<long?> PinnedIdAsync(string login, CancellationToken cancellationToken);

    Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken);
}

public sealed class SqliteAdminSessionRepository(SqliteConnectionFactory connections) : IAdminSessionRepository
{
    public async Task InsertAsync(byte[] idHash, AdminIdentity admin, long createdAt, long expiresAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        await using var lease = await connections.OpenAsync(cancellationToken);
        await lease.Prepared("INSERT INTO admin_sessions (id_hash, github_id, login, created_at, expires_at) VALUES (@idHash, @gitHubId, @login, @now, @expiresAt)")
            .With("@idHash", idHash)
            .With("@gitHubId", admin.GitHubId)
            .With("@login", admin.Login)
            .With("@now", createdAt)
            .With("@expiresAt", expiresAt)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<AdminIdentity?> FindActiveAsync(byte[] idHash, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var reader = await lease.Prepared("SELECT github_id, login FROM admin_sessions WHERE id_hash = @idHash AND revoked_at IS NULL AND expires_at > @now")
            .With("@idHash", idHash)
            .With("@now", now)
            .ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new AdminIdentity(reader.GetInt64(0), reader.GetString(1)) : null;
    }

    public async Task RevokeAsync(byte[] idHash, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await lease.Prepared("UPDATE admin_sessions SET revoked_at = @now WHERE id_hash = @idHash AND revoked_at IS NULL")
            .With("@idHash", idHash)
            .With("@now", now)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<bool> TryPinAsync(string login, long gitHubId, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("INSERT INTO admin_pins (login, github_id, pinned_at) VALUES (@login, @gitHubId, @now) ON CONFLICT (login) DO NOTHING")
            .With("@login", login)
            .With("@gitHubId", gitHubId)
            .With("@now", now)
            .ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task<long?> PinnedIdAsync(string login, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var reader = await lease.Prepared("SELECT github_id FROM admin_pins WHERE login = @login").With("@login", login).ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? reader.GetInt64(0) : null;
    }

    public Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken) =>
        connections.DeleteInBatchesAsync("admin_sessions", "expires_at < @now", new Dictionary<string, object> { ["@now"] = now }, cancellationToken);
}

public sealed class PostgresAdminSessionRepository(PostgresDatabase database) : IAdminSessionRepository
{
    public Task InsertAsync(byte[] idHash, AdminIdentity admin, long createdAt, long expiresAt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admin);
        return database.ExecuteAsync("INSERT INTO admin_sessions (id_hash, github_id, login, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            cancellationToken, idHash, admin.GitHubId, admin.Login, createdAt, expiresAt);
    }

    public async Task<AdminIdentity?> FindActiveAsync(byte[] idHash, long now, CancellationToken cancellationToken) =>
        (await database.QueryAsync("SELECT github_id, login FROM admin_sessions WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
            reader => new AdminIdentity(reader.GetInt64(0), reader.GetString(1)), cancellationToken, idHash, now)).SingleOrDefault();

    public Task RevokeAsync(byte[] idHash, long now, CancellationToken cancellationToken) =>
        database.ExecuteAsync("UPDATE admin_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL", cancellationToken, idHash, now);

    public async Task<bool> TryPinAsync(string login, long gitHubId, long now, CancellationToken cancellationToken) =>
        await database.ExecuteAsync("INSERT INTO admin_pins (login, github_id, pinned_at) VALUES ($1, $2, $3) ON CONFLICT (login) DO NOTHING", cancellationToken, login, gitHubId, now) == 1;

    public async Task<long?> PinnedIdAsync(string login, CancellationToken cancellationToken) =>
        (await database.QueryAsync("SELECT github_id FROM admin_pins WHERE login = $1", reader => (long?)reader.GetInt64(0), cancellationToken, login)).SingleOrDefault();

    public Task<int> DeleteExpiredAsync(long now, CancellationToken cancellationToken) =>
        database.DeleteInBatchesAsync("admin_sessions", "expires_at < $1", cancellationToken, now);
}
