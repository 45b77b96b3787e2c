using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using OAuthBroker.Storage;

namespace OAuthBroker.Admin;

/// <summary>An admin as GitHub knows them: the numeric id is who they are; the login is only what they are called.</summary>
public sealed record AdminIdentity(long GitHubId, string Login);

/// <summary>
/// Admin sessions kept server-side, so that signing out or leaving the admin list ends a session at once rather than
/// when its cookie expires; the cookie carries only a random session id, stored here as its SHA-256. Also the pins of
/// admins named by login: the GitHub id a login belonged to when it first signed in, so that a renamed login claimed
/// by someone else is not an admin.
/// </summary>
public sealed partial class AdminSessionStore(SqliteConnectionFactory connections, TimeProvider time, ILogger<AdminSessionStore> logger) : IPurgeable
{
    public string Name => "admin_sessions";

    public async Task<string> CreateAsync(AdminIdentity admin, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        var id = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var now = time.GetUtcNow();
        await using var lease = await connections.OpenAsync(cancellationToken);
        await lease.Prepared("INSERT INTO admin_sessions (id_hash, github_id, login, created_at, expires_at) VALUES (@idHash, @gitHubId, @login, @now, @expiresAt)")
            .With("@idHash", Hash(id))
            .With("@gitHubId", admin.GitHubId)
            .With("@login", admin.Login)
            .With("@now", now.ToUnixTimeMilliseconds())
            .With("@expiresAt", now.Add(lifetime).ToUnixTimeMilliseconds())
            .ExecuteNonQueryAsync(cancellationToken);
        return id;
    }

    /// <summary>The admin of a session that is neither signed out nor expired.</summary>
    public async Task<AdminIdentity?> FindActiveAsync(string? sessionId, CancellationToken cancellationToken)
    {
        if (sessionId is not { Length: 43 })
        {
            return null;
        }

        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var reader = await lease.Prepared("SELECT github_id, login FROM admin_sessions WHERE id_hash = @idHash AND revoked_at IS NULL AND expires_at > @now")
            .With("@idHash", Hash(sessionId))
            .With("@now", time.GetUtcNow().ToUnixTimeMilliseconds())
            .ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new AdminIdentity(reader.GetInt64(0), reader.GetString(1)) : null;
    }

    public async Task RevokeAsync(string? sessionId, CancellationToken cancellationToken)
    {
        if (sessionId is not { Length: 43 })
        {
            return;
        }

        await using var lease = await connections.OpenAsync(cancellationToken);
        await lease.Prepared("UPDATE admin_sessions SET revoked_at = @now WHERE id_hash = @idHash AND revoked_at IS NULL")
            .With("@idHash", Hash(sessionId))
            .With("@now", time.GetUtcNow().ToUnixTimeMilliseconds())
            .ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Whether <paramref name="login"/> belongs to <paramref name="gitHubId"/>: the first sign-in under a login pins it to
    /// that id; a later one with another id (the login was renamed and claimed again) is not that admin.
    /// </summary>
    public async Task<bool> MatchesPinAsync(string login, long gitHubId, CancellationToken cancellationToken)
    {
        var key = login.ToLowerInvariant();
        await using var lease = await connections.OpenAsync(cancellationToken);
        var pinned = await lease.Prepared("INSERT INTO admin_pins (login, github_id, pinned_at) VALUES (@login, @gitHubId, @now) ON CONFLICT (login) DO NOTHING")
            .With("@login", key)
            .With("@gitHubId", gitHubId)
            .With("@now", time.GetUtcNow().ToUnixTimeMilliseconds())
            .ExecuteNonQueryAsync(cancellationToken) == 1;
        if (pinned)
        {
            Log.Pinned(logger, login, gitHubId);
            return true;
        }

        await using var reader = await lease.Prepared("SELECT github_id FROM admin_pins WHERE login = @login").With("@login", key).ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) && reader.GetInt64(0) == gitHubId;
    }

    public async Task<int> PurgeAsync(CancellationToken cancellationToken) =>
        await connections.DeleteInBatchesAsync("admin_sessions", "expires_at < @now", new Dictionary<string, object> { ["@now"] = time.GetUtcNow().ToUnixTimeMilliseconds() }, cancellationToken);

    private static byte[] Hash(string sessionId) => SHA256.HashData(Encoding.ASCII.GetBytes(sessionId));

    private static partial class Log
    {
        [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "Admin login {GitHubLogin} is pinned to GitHub id {GitHubId}; name admins by id instead: Admin:GitHubIds")]
        public static partial void Pinned(ILogger logger, string gitHubLogin, long gitHubId);
    }
}
