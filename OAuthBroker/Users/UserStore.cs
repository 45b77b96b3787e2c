using Dapper;
using OAuthBroker.GitHub;
using OAuthBroker.Storage;

namespace OAuthBroker.Users;

/// <summary>A person who signed in through the broker. Only profile fields: the broker never stores a GitHub token.</summary>
public sealed record BrokerUser(long Id, long GitHubId, string Login, string? Name, string? Email, string? AvatarUrl, long FirstLoginAt, long LastLoginAt);

public sealed class UserStore(SqliteConnectionFactory connections, TimeProvider time)
{
    private const string Columns = "id AS Id, github_id AS GitHubId, login AS Login, name AS Name, email AS Email, avatar_url AS AvatarUrl, first_login_at AS FirstLoginAt, last_login_at AS LastLoginAt";

    /// <summary>Creates the user at first login, refreshes the profile afterwards; the GitHub id is the identity, not the login, which can be renamed.</summary>
    public async Task<BrokerUser> RecordLoginAsync(GitHubUser gitHubUser, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        return await connection.QuerySingleAsync<BrokerUser>(
            $"""
            INSERT INTO users (github_id, login, name, email, avatar_url, first_login_at, last_login_at)
            VALUES (@Id, @Login, @Name, @Email, @AvatarUrl, @Now, @Now)
            ON CONFLICT (github_id) DO UPDATE SET
                login = excluded.login, name = excluded.name, email = excluded.email,
                avatar_url = excluded.avatar_url, last_login_at = excluded.last_login_at
            RETURNING {Columns}
            """,
            new { gitHubUser.Id, gitHubUser.Login, gitHubUser.Name, gitHubUser.Email, gitHubUser.AvatarUrl, Now = time.GetUtcNow().ToUnixTimeMilliseconds() });
    }

    public async Task<BrokerUser?> FindAsync(long id, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        return await connection.QuerySingleOrDefaultAsync<BrokerUser>($"SELECT {Columns} FROM users WHERE id = @id", new { id });
    }
}
