using Dapper;
using OAuthBroker.GitHub;
using OAuthBroker.Storage;

namespace OAuthBroker.Users;

/// <summary>A person who signed in through the broker. Only profile fields: the broker never stores a GitHub token.</summary>
public sealed record BrokerUser(long Id, long GitHubId, string Login, string? Name, string? Email, string? AvatarUrl, long FirstLoginAt, long LastLoginAt);

/// <summary>Where a login took a user: the instance, and the GitHub integration and scope set of the token GitHub issued for it.</summary>
public sealed record LoginGrant(string InstanceId, string Provider, string Scope);

/// <summary>
/// An instance a user signed in to: how many GitHub tokens the broker had GitHub issue for it with this integration
/// and scope set (one per login; a refresh replaces one and adds none), and when.
/// </summary>
public sealed record UserInstance(string InstanceId, string Provider, string Scope, long Tokens, long FirstAt, long LastAt);

/// <summary>A user, integration and scope set with many tokens issued: GitHub keeps ten per such combination and revokes the oldest beyond.</summary>
public sealed record TokenLimitRisk(long UserId, string Login, string Provider, string Scope, long Tokens, long Instances);

/// <summary>The people who signed in and the instances they signed in to, one implementation per database.</summary>
public interface IUserStore
{
    /// <summary>
    /// Creates the user at first login, refreshes the profile afterwards, and counts the token GitHub issued for
    /// <paramref name="grant"/>; the GitHub id is the identity, not the login, which can be renamed.
    /// </summary>
    Task<BrokerUser> RecordLoginAsync(GitHubUser gitHubUser, LoginGrant? grant, CancellationToken cancellationToken);

    Task<BrokerUser?> FindAsync(long id, CancellationToken cancellationToken);

    Task<BrokerUser?> FindByGitHubIdAsync(long gitHubId, CancellationToken cancellationToken);

    /// <summary>The user last seen with this login (case-insensitive; a renamed login may have had an earlier owner).</summary>
    Task<BrokerUser?> FindByLoginAsync(string login, CancellationToken cancellationToken);

    /// <summary>The instances the user signed in to, by integration and scope set, most recent first.</summary>
    Task<IReadOnlyList<UserInstance>> ListInstancesAsync(long userId, CancellationToken cancellationToken);

    /// <summary>Users whose tokens for one integration and scope set number at least <paramref name="threshold"/>, most first.</summary>
    Task<IReadOnlyList<TokenLimitRisk>> FindNearTokenLimitAsync(long threshold, int limit, CancellationToken cancellationToken);

    /// <summary>After the user's whole authorization of an integration was revoked at GitHub: none of those tokens lives.</summary>
    Task<int> ForgetInstancesAsync(long userId, string provider, CancellationToken cancellationToken);

    /// <summary>Drops what was last issued before <paramref name="before"/> (GitHub revokes a token unused for a year).</summary>
    Task<int> DeleteInstancesBeforeAsync(long before, CancellationToken cancellationToken);
}

/// <summary>The SQL both databases share for the user-instance record; only parameter markers differ.</summary>
internal static class UserInstanceSql
{
    public const string Columns = "instance_id, provider, scope, tokens, first_at, last_at";

    public static UserInstance Read(System.Data.Common.DbDataReader reader) =>
        new(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5));

    public static TokenLimitRisk ReadRisk(System.Data.Common.DbDataReader reader) =>
        new(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4), reader.GetInt64(5));
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

    private const string RecordGrantSql = """
        INSERT INTO user_instances (user_id, instance_id, provider, scope, tokens, first_at, last_at)
        VALUES (@user, @instance, @provider, @scope, 1, @now, @now)
        ON CONFLICT (user_id, provider, scope, instance_id) DO UPDATE SET tokens = tokens + 1, last_at = excluded.last_at
        """;

    public async Task<BrokerUser> RecordLoginAsync(GitHubUser gitHubUser, LoginGrant? grant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(gitHubUser);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        // Both writes share the lease's commit: the user and the count of their tokens are written together.
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        var user = await UpsertAsync(lease, gitHubUser, now, cancellationToken);
        if (grant is not null)
        {
            await lease.Prepared(RecordGrantSql)
                .With("@user", user.Id).With("@instance", grant.InstanceId).With("@provider", grant.Provider).With("@scope", grant.Scope).With("@now", now)
                .ExecuteNonQueryAsync(cancellationToken);
        }

        return user;
    }

    private static async Task<BrokerUser> UpsertAsync(SqliteLease lease, GitHubUser gitHubUser, long now, CancellationToken cancellationToken)
    {
        var command = lease.Prepared(RecordLoginSql)
            .With("@id", gitHubUser.Id)
            .With("@login", gitHubUser.Login)
            .With("@name", gitHubUser.Name)
            .With("@email", gitHubUser.Email)
            .With("@avatarUrl", gitHubUser.AvatarUrl)
            .With("@now", now);
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

    public async Task<BrokerUser?> FindByGitHubIdAsync(long gitHubId, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Connection.QuerySingleOrDefaultAsync<BrokerUser>($"SELECT {Columns} FROM users WHERE github_id = @gitHubId", new { gitHubId });
    }

    public async Task<BrokerUser?> FindByLoginAsync(string login, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Connection.QueryFirstOrDefaultAsync<BrokerUser>($"SELECT {Columns} FROM users WHERE login = @login COLLATE NOCASE ORDER BY last_login_at DESC LIMIT 1", new { login });
    }

    public async Task<IReadOnlyList<UserInstance>> ListInstancesAsync(long userId, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var reader = await lease.Prepared($"SELECT {UserInstanceSql.Columns} FROM user_instances WHERE user_id = @user ORDER BY last_at DESC, instance_id")
            .With("@user", userId).ExecuteReaderAsync(cancellationToken);
        var rows = new List<UserInstance>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(UserInstanceSql.Read(reader));
        }

        return rows;
    }

    public async Task<IReadOnlyList<TokenLimitRisk>> FindNearTokenLimitAsync(long threshold, int limit, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var reader = await lease.Prepared("""
            SELECT u.id, u.login, g.provider, g.scope, SUM(g.tokens), COUNT(*)
            FROM user_instances g JOIN users u ON u.id = g.user_id
            GROUP BY u.id, u.login, g.provider, g.scope HAVING SUM(g.tokens) >= @threshold
            ORDER BY SUM(g.tokens) DESC, u.login LIMIT @limit
            """).With("@threshold", threshold).With("@limit", limit).ExecuteReaderAsync(cancellationToken);
        var rows = new List<TokenLimitRisk>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(UserInstanceSql.ReadRisk(reader));
        }

        return rows;
    }

    public async Task<int> ForgetInstancesAsync(long userId, string provider, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("DELETE FROM user_instances WHERE user_id = @user AND provider = @provider").With("@user", userId).With("@provider", provider).ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<int> DeleteInstancesBeforeAsync(long before, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("DELETE FROM user_instances WHERE last_at < @before").With("@before", before).ExecuteNonQueryAsync(cancellationToken);
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

    // The user and the count of their tokens in one statement: one round trip, one commit.
    private const string RecordLoginWithGrantSql = """
        WITH u AS (
            INSERT INTO users (github_id, login, name, email, avatar_url, first_login_at, last_login_at)
            VALUES ($1, $2, $3, $4, $5, $6, $6)
            ON CONFLICT (github_id) DO UPDATE SET
                login = excluded.login, name = excluded.name, email = excluded.email,
                avatar_url = excluded.avatar_url, last_login_at = excluded.last_login_at
            RETURNING id, github_id, login, name, email, avatar_url, first_login_at, last_login_at
        ), g AS (
            INSERT INTO user_instances (user_id, instance_id, provider, scope, tokens, first_at, last_at)
            SELECT id, $7, $8, $9, 1, $6, $6 FROM u
            ON CONFLICT (user_id, provider, scope, instance_id) DO UPDATE SET tokens = user_instances.tokens + 1, last_at = excluded.last_at
        )
        SELECT id, github_id, login, name, email, avatar_url, first_login_at, last_login_at FROM u
        """;

    private const string Columns = "id, github_id, login, name, email, avatar_url, first_login_at, last_login_at";

    public async Task<BrokerUser> RecordLoginAsync(GitHubUser gitHubUser, LoginGrant? grant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(gitHubUser);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var rows = grant is null
            ? await database.QueryAsync(RecordLoginSql, SqliteUserStore.Read, cancellationToken,
                gitHubUser.Id, gitHubUser.Login, gitHubUser.Name, gitHubUser.Email, gitHubUser.AvatarUrl, now)
            : await database.QueryAsync(RecordLoginWithGrantSql, SqliteUserStore.Read, cancellationToken,
                gitHubUser.Id, gitHubUser.Login, gitHubUser.Name, gitHubUser.Email, gitHubUser.AvatarUrl, now, grant.InstanceId, grant.Provider, grant.Scope);
        return rows.Single();
    }

    public async Task<BrokerUser?> FindAsync(long id, CancellationToken cancellationToken) =>
        (await database.QueryAsync($"SELECT {Columns} FROM users WHERE id = $1", SqliteUserStore.Read, cancellationToken, id)).SingleOrDefault();

    public async Task<BrokerUser?> FindByGitHubIdAsync(long gitHubId, CancellationToken cancellationToken) =>
        (await database.QueryAsync($"SELECT {Columns} FROM users WHERE github_id = $1", SqliteUserStore.Read, cancellationToken, gitHubId)).SingleOrDefault();

    public async Task<BrokerUser?> FindByLoginAsync(string login, CancellationToken cancellationToken) =>
        (await database.QueryAsync($"SELECT {Columns} FROM users WHERE lower(login) = lower($1) ORDER BY last_login_at DESC LIMIT 1", SqliteUserStore.Read, cancellationToken, login)).SingleOrDefault();

    public async Task<IReadOnlyList<UserInstance>> ListInstancesAsync(long userId, CancellationToken cancellationToken) =>
        await database.QueryAsync($"SELECT {UserInstanceSql.Columns} FROM user_instances WHERE user_id = $1 ORDER BY last_at DESC, instance_id", UserInstanceSql.Read, cancellationToken, userId);

    public async Task<IReadOnlyList<TokenLimitRisk>> FindNearTokenLimitAsync(long threshold, int limit, CancellationToken cancellationToken) =>
        await database.QueryAsync("""
            SELECT u.id, u.login, g.provider, g.scope, SUM(g.tokens)::bigint, COUNT(*)
            FROM user_instances g JOIN users u ON u.id = g.user_id
            GROUP BY u.id, u.login, g.provider, g.scope HAVING SUM(g.tokens) >= $1
            ORDER BY SUM(g.tokens) DESC, u.login LIMIT $2
            """, UserInstanceSql.ReadRisk, cancellationToken, threshold, limit);

    public Task<int> ForgetInstancesAsync(long userId, string provider, CancellationToken cancellationToken) =>
        database.ExecuteAsync("DELETE FROM user_instances WHERE user_id = $1 AND provider = $2", cancellationToken, userId, provider);

    public Task<int> DeleteInstancesBeforeAsync(long before, CancellationToken cancellationToken) =>
        database.ExecuteAsync("DELETE FROM user_instances WHERE last_at < $1", cancellationToken, before);
}

/// <summary>Forgets instance records a year after their last token: GitHub revokes an OAuth token unused for a year.</summary>
public sealed class UserInstancePurge(IUserStore users, TimeProvider time) : IPurgeable
{
    public static readonly TimeSpan Retention = TimeSpan.FromDays(366);

    public string Name => "user_instances";

    public Task<int> PurgeAsync(CancellationToken cancellationToken) =>
        users.DeleteInstancesBeforeAsync(time.GetUtcNow().Subtract(Retention).ToUnixTimeMilliseconds(), cancellationToken);
}
