using System.Text.Json.Nodes;
using Dapper;
using OAuthBroker.Storage;

namespace OAuthBroker.Audit;

/// <summary>An audit row as stored; times are Unix milliseconds, instance entries JSON text.</summary>
public sealed record AuditRow(long Id, long At, string Kind, string? InstanceId, string? Actor, string Action, string? Reason, string? ClientIp, string? BeforeJson, string? AfterJson, long Count)
{
    public AuditEvent ToEvent(bool withEntries) => new(
        Id, DateTimeOffset.FromUnixTimeMilliseconds(At), Kind, InstanceId, Actor, Action, Reason, ClientIp,
        withEntries && BeforeJson is not null ? JsonNode.Parse(BeforeJson) : null, withEntries && AfterJson is not null ? JsonNode.Parse(AfterJson) : null, Count);

    /// <summary>The column order both backends select in.</summary>
    internal const string Columns = "id, at, kind, instance_id, actor, action, reason, client_ip, before_json, after_json, count";

    internal static AuditRow Read(System.Data.Common.DbDataReader reader) => new(
        reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2), Text(reader, 3), Text(reader, 4), reader.GetString(5), Text(reader, 6),
        Text(reader, 7), Text(reader, 8), Text(reader, 9), reader.GetInt64(10));

    private static string? Text(System.Data.Common.DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);
}

/// <summary>Login rows of one instance, action and reason within one time bucket, added up (refusal rows count many).</summary>
public sealed record LoginActivity(string? InstanceId, string Action, string? Reason, long Bucket, long Count)
{
    /// <summary>
    /// Login rows at or after <c>@since</c>, counted per instance, action, reason (refusals only) and bucket of
    /// <c>@bucket</c> milliseconds. The same text on both backends (integer division of 64-bit integers), with
    /// PostgreSQL's positional parameters put in for the names.
    /// </summary>
    internal const string SqliteSql = """
        SELECT instance_id, action, CASE WHEN action = 'refused' THEN reason END AS reason, (at - @since) / @bucket AS bucket, CAST(SUM(count) AS BIGINT) AS total
        FROM audit_events WHERE kind = 'login' AND at >= @since
        GROUP BY instance_id, action, CASE WHEN action = 'refused' THEN reason END, (at - @since) / @bucket
        """;

    internal static readonly string PostgresSql = SqliteSql.Replace("@since", "$1::bigint", StringComparison.Ordinal).Replace("@bucket", "$2::bigint", StringComparison.Ordinal);

    internal static LoginActivity Read(System.Data.Common.DbDataReader reader) => new(
        reader.IsDBNull(0) ? null : reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4));
}

/// <summary>Where the audit trail is kept: one implementation per database.</summary>
public interface IAuditRepository
{
    /// <summary>What the admin overview charts: login rows since <paramref name="since"/> in buckets of <paramref name="bucketMillis"/>.</summary>
    Task<IReadOnlyList<LoginActivity>> LoginActivityAsync(long since, long bucketMillis, CancellationToken cancellationToken);

    Task InsertAsync(AuditRow row, CancellationToken cancellationToken);

    /// <summary>Adds one to the refusal row of <paramref name="bucket"/> (minute, source, instance, reason), creating it at the first.</summary>
    Task CountRefusalAsync(long at, string? instanceId, string reason, string source, byte[] bucket, CancellationToken cancellationToken);

    /// <summary>Newest first, at most <paramref name="take"/> rows.</summary>
    Task<IReadOnlyList<AuditRow>> QueryAsync(AuditQuery query, int take, CancellationToken cancellationToken);

    /// <summary>The latest login rows of every instance, at most <paramref name="perInstance"/> each (without instance entries).</summary>
    Task<IReadOnlyList<AuditRow>> RecentLoginsAsync(int perInstance, CancellationToken cancellationToken);

    Task<int> DeleteBeforeAsync(long cutoff, CancellationToken cancellationToken);
}

public sealed class SqliteAuditRepository(SqliteConnectionFactory connections) : IAuditRepository
{
    private const string InsertSql = """
        INSERT INTO audit_events (at, kind, instance_id, actor, action, reason, client_ip, before_json, after_json)
        VALUES (@at, @kind, @instanceId, @actor, @action, @reason, @clientIp, @before, @after)
        """;

    private const string CountRefusalSql = """
        INSERT INTO audit_events (at, kind, instance_id, action, reason, client_ip, bucket)
        VALUES (@at, 'login', @instanceId, 'refused', @reason, @clientIp, @bucket)
        ON CONFLICT (bucket) WHERE bucket IS NOT NULL DO UPDATE SET count = count + 1, at = excluded.at
        """;

    public async Task InsertAsync(AuditRow row, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(row);
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared(InsertSql)
            .With("@at", row.At)
            .With("@kind", row.Kind)
            .With("@instanceId", row.InstanceId)
            .With("@actor", row.Actor)
            .With("@action", row.Action)
            .With("@reason", row.Reason)
            .With("@clientIp", row.ClientIp)
            .With("@before", row.BeforeJson)
            .With("@after", row.AfterJson)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task CountRefusalAsync(long at, string? instanceId, string reason, string source, byte[] bucket, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared(CountRefusalSql)
            .With("@at", at)
            .With("@instanceId", instanceId)
            .With("@reason", reason)
            .With("@clientIp", source)
            .With("@bucket", bucket)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<AuditRow>> QueryAsync(AuditQuery query, int take, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        await using var lease = await connections.OpenReaderAsync(cancellationToken);
        return [.. await lease.Connection.QueryAsync<AuditRow>(
            """
            SELECT id AS Id, at AS At, kind AS Kind, instance_id AS InstanceId, actor AS Actor, action AS Action, reason AS Reason,
                   client_ip AS ClientIp, before_json AS BeforeJson, after_json AS AfterJson, count AS Count
            FROM audit_events
            WHERE (@InstanceId IS NULL OR instance_id = @InstanceId)
              AND (@Kind IS NULL OR kind = @Kind)
              AND (@Action IS NULL OR action = @Action)
              AND (@BeforeId IS NULL OR id < @BeforeId)
            ORDER BY id DESC
            LIMIT @Take
            """,
            new { query.InstanceId, query.Kind, query.Action, query.BeforeId, Take = take })];
    }

    public async Task<IReadOnlyList<LoginActivity>> LoginActivityAsync(long since, long bucketMillis, CancellationToken cancellationToken)
    {
        // A reading connection of its own: the overview's aggregate never waits for, or holds up, the login path's writer.
        await using var lease = await connections.OpenReaderAsync(cancellationToken);
        await using var command = lease.Connection.CreateCommand();
        command.CommandText = LoginActivity.SqliteSql;
        await using var reader = await command.With("@since", since).With("@bucket", bucketMillis).ExecuteReaderAsync(cancellationToken);
        var rows = new List<LoginActivity>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(LoginActivity.Read(reader));
        }

        return rows;
    }

    public async Task<IReadOnlyList<AuditRow>> RecentLoginsAsync(int perInstance, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenReaderAsync(cancellationToken);
        return [.. await lease.Connection.QueryAsync<AuditRow>(
            """
            SELECT Id, At, Kind, InstanceId, Actor, Action, Reason, ClientIp, NULL AS BeforeJson, NULL AS AfterJson, Count FROM (
                SELECT id AS Id, at AS At, kind AS Kind, instance_id AS InstanceId, actor AS Actor, action AS Action, reason AS Reason, client_ip AS ClientIp, count AS Count,
                       ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY id DESC) AS Position
                FROM audit_events WHERE kind = 'login' AND instance_id IS NOT NULL)
            WHERE Position <= @perInstance
            """,
            new { perInstance })];
    }

    public Task<int> DeleteBeforeAsync(long cutoff, CancellationToken cancellationToken) =>
        connections.DeleteInBatchesAsync("audit_events", "at < @cutoff", new Dictionary<string, object> { ["@cutoff"] = cutoff }, cancellationToken);
}

public sealed class PostgresAuditRepository(PostgresDatabase database) : IAuditRepository
{
    private const string InsertSql = """
        INSERT INTO audit_events (at, kind, instance_id, actor, action, reason, client_ip, before_json, after_json)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """;

    // The unique index on bucket makes concurrent first refusals of a bucket, on any replica, one row.
    private const string CountRefusalSql = """
        INSERT INTO audit_events (at, kind, instance_id, action, reason, client_ip, bucket)
        VALUES ($1, 'login', $2, 'refused', $3, $4, $5)
        ON CONFLICT (bucket) WHERE bucket IS NOT NULL DO UPDATE SET count = audit_events.count + 1, at = excluded.at
        """;

    private const string QuerySql = $"""
        SELECT {AuditRow.Columns} FROM audit_events
        WHERE ($1::text IS NULL OR instance_id = $1)
          AND ($2::text IS NULL OR kind = $2)
          AND ($3::text IS NULL OR action = $3)
          AND ($4::bigint IS NULL OR id < $4)
        ORDER BY id DESC
        LIMIT $5
        """;

    private const string RecentLoginsSql = """
        SELECT id, at, kind, instance_id, actor, action, reason, client_ip, NULL, NULL, count FROM (
            SELECT audit_events.*, ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY id DESC) AS position
            FROM audit_events WHERE kind = 'login' AND instance_id IS NOT NULL) AS ranked
        WHERE position <= $1
        """;

    public Task InsertAsync(AuditRow row, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(row);
        return database.ExecuteAsync(InsertSql, cancellationToken, row.At, row.Kind, row.InstanceId, row.Actor, row.Action, row.Reason, row.ClientIp, row.BeforeJson, row.AfterJson);
    }

    public Task CountRefusalAsync(long at, string? instanceId, string reason, string source, byte[] bucket, CancellationToken cancellationToken) =>
        database.ExecuteAsync(CountRefusalSql, cancellationToken, at, instanceId, reason, source, bucket);

    public async Task<IReadOnlyList<AuditRow>> QueryAsync(AuditQuery query, int take, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        return await database.QueryAsync(QuerySql, AuditRow.Read, cancellationToken, query.InstanceId, query.Kind, query.Action, query.BeforeId, (long)take);
    }

    public async Task<IReadOnlyList<LoginActivity>> LoginActivityAsync(long since, long bucketMillis, CancellationToken cancellationToken) =>
        await database.QueryAsync(LoginActivity.PostgresSql, LoginActivity.Read, cancellationToken, since, bucketMillis);

    public async Task<IReadOnlyList<AuditRow>> RecentLoginsAsync(int perInstance, CancellationToken cancellationToken) =>
        await database.QueryAsync(RecentLoginsSql, AuditRow.Read, cancellationToken, (long)perInstance);

    public Task<int> DeleteBeforeAsync(long cutoff, CancellationToken cancellationToken) => database.DeleteInBatchesAsync("audit_events", "at < $1", cancellationToken, cutoff);
}
