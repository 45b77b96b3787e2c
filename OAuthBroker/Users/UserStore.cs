using Dapper;
using OAuthBroker.GitHub;
using OAuthBroker.Storage;

namespace OAuthBroker.Users;

/// <summary>A person who signed in through the broker. Only profile fields: the broker never stores a GitHub token.</summary>
public sealed record BrokerUser(long Id, long GitHubId, string Login, string? Name, string? Email, string? AvatarUrl, long FirstLoginAt, long LastLoginAt);

/// <summary>The people who signed in, one implementation per database.</summary>
public interface IUserStore
{
    /// <summary>Creates the user at first login, refreshes the profile afterwards; the GitHub id is the identity, not the login, which can be renamed.</summary>
    Task<BrokerUser> RecordLoginAsync(GitHubUser gitHubUser, CancellationToken cancellationToken);

    Task<BrokerUser?> FindAsync(long id, CancellationToken cancellationToken);
}

public sealed class SqliteUserStore(SqliteConnectionFactory connections, TimeProvider time) : IUserStore
{
    private const string Columns = "id AS Id, github_id AS GitHubId, login AS Login, name AS Name, email AS Email, avatar_url AS AvatarUrl, first_login_at AS FirstLoginAt, last_login_at AS LastLoginAt";

    private const string RecordLoginSql = """
        INSERT INTO users (github_id, login, name, email, avatar_url, first_login_at, last_login_at)
        VALUES (@id, @login, @name, @email, @avatarUrl, @now, @now)
        ON CONFLICT (github_id) DO UPDATE SET
            login = excluded.login, name = excluded.name, email = excluded.email,
            avatar_url = excluded.avatar_url, last_login_at = excluded.last_login_at
        RETURNING id, github_id, login, name, email, avatar_url, first_login_at, last_login_at
        """;

    public async Task<BrokerUser> RecordLoginAsync(GitHubUser gitHubUser, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        var command = lease.Prepared(RecordLoginSql)
            .With("@id", gitHubUser.Id)
            .With("@login", gitHubUser.Login)
            .With("@name", gitHubUser.Name)
            .With("@email", gitHubUser.Email)
            .With("@avatarUrl", gitHubUser.AvatarUrl)
            .With("@now", time.GetUtcNow().ToUnixTimeMilliseconds());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw new InvalidOperationException("The user upsert returned no row.");
        }

        var user = Read(reader);
        // RETURNING rows are produced as the statement runs: it is only complete once stepped to its end.
        while (await reader.ReadAsync(cancellationToken))
        {
        }

        return user;
    }

    internal static BrokerUser Read(System.Data.Common.DbDataReader reader) => new(
        reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetInt64(6), reader.GetInt64(7));

    public async Task<BrokerUser?> FindAsync(long id, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        return await connection.QuerySingleOrDefaultAsync<BrokerUser>($"SELECT {Columns} FROM users WHERE id = @id", new { id });
    }
}

public sealed class PostgresUserStore(PostgresDatabase database, TimeProvider time) : IUserStore
{
    private const string RecordLoginSql = """
        INSERT INTO users (github_id, login, name, email, avatar_url, first_login_at, last_login_at)
        VALUES ($1, $2, $3, $4, $5, $6, $6)
        ON CONFLICT (github_id) DO UPDATE SET
            login = excluded.login, name = excluded.name, email = excluded.email,
            avatar_url = excluded.avatar_url, last_login_at = excluded.last_login_at
        RETURNING id, github_id, login, name, email, avatar_url, first_login_at, last_login_at
        """;

    private const string FindSql = "SELECT id, github_id, login, name, email, avatar_url, first_login_at, last_login_at FROM users WHERE id = $1";

    public async Task<BrokerUser> RecordLoginAsync(GitHubUser gitHubUser, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(gitHubUser);
        var rows = await database.QueryAsync(RecordLoginSql, SqliteUserStore.Read, cancellationToken,
            gitHubUser.Id, gitHubUser.Login, gitHubUser.Name, gitHubUser.Email, gitHubUser.AvatarUrl, time.GetUtcNow().ToUnixTimeMilliseconds());
        return rows.Single();
    }

    public async Task<BrokerUser?> FindAsync(long id, CancellationToken cancellationToken) =>
        (await database.QueryAsync(FindSql, SqliteUserStore.Read, cancellationToken, id)).SingleOrDefault();
}
