using System.Text.Json.Nodes;
using Dapper;
using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.Storage;

namespace OAuthBroker.Audit;

public sealed class AuditOptions
{
    public const string Section = "Audit";

    /// <summary>How long audit events are kept before they are purged.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>
    /// Sources whose refusals get rows of their own in one minute; the refusals of further sources in that minute are
    /// counted together under the source <c>*</c>.
    /// </summary>
    public int RefusalSourcesPerMinute { get; set; } = 1000;
}

public static class AuditKinds
{
    public const string Login = "login";
    public const string Admin = "admin";
}

/// <summary>One event, or for refusals (<see cref="Count"/> above 1) the refusals of one source, reason and minute.</summary>
public sealed record AuditEvent(long Id, DateTimeOffset At, string Kind, string? InstanceId, string? Actor, string Action, string? Reason, string? ClientIp, JsonNode? Before, JsonNode? After, long Count = 1);

public sealed record AuditQuery(string? InstanceId, string? Kind, string? Action, long? BeforeId, int Limit);

public sealed record AuditPage(IReadOnlyList<AuditEvent> Events, long? NextBeforeId);

/// <summary>
/// Who changed the allowlist and every login attempt, in SQLite. Instance entries are recorded with any shared
/// secret (an <c>oct</c> key's <c>k</c>) replaced by a fingerprint: the audit trail holds no secret.
/// </summary>
public sealed class AuditLog(SqliteConnectionFactory connections, IOptions<AuditOptions> options, TimeProvider time) : IPurgeable
{
    public const int MaxPageSize = 200;

    public string Name => "audit_events";

    private readonly Lock sourcesGate = new();
    private readonly HashSet<string> sourcesThisMinute = new(StringComparer.Ordinal);
    private long sourcesMinute;

    public Task RecordLoginAsync(string? instanceId, string? gitHubLogin, string outcome, string? reason, string? clientIp, CancellationToken cancellationToken) =>
        InsertAsync(AuditKinds.Login, instanceId, gitHubLogin, outcome, reason, clientIp, null, null, cancellationToken);

    /// <summary>
    /// A refused request, counted into one row per minute, source (an IPv4 address or an IPv6 /64), instance and
    /// reason. Beyond <see cref="AuditOptions.RefusalSourcesPerMinute"/> sources in a minute, further sources share one
    /// row per reason, so a flood from many addresses adds a bounded number of rows per minute.
    /// </summary>
    public async Task RecordRefusalAsync(string? instanceId, string reason, System.Net.IPAddress? client, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var minute = now.ToUnixTimeMilliseconds() / 60_000;
        var source = Web.ClientAddress.RateLimitKey(client);
        lock (sourcesGate)
        {
            if (sourcesMinute != minute)
            {
                sourcesMinute = minute;
                sourcesThisMinute.Clear();
            }

            if (!sourcesThisMinute.Contains(source))
            {
                source = sourcesThisMinute.Count < options.Value.RefusalSourcesPerMinute ? source : "*";
                sourcesThisMinute.Add(source);
            }
        }

        var bucket = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{minute}\n{source}\n{instanceId}\n{reason}"));
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared(CountRefusalSql)
            .With("@at", now.ToUnixTimeMilliseconds())
            .With("@instanceId", instanceId)
            .With("@reason", reason)
            .With("@clientIp", source)
            .With("@bucket", bucket)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    public Task RecordAdminAsync(string actor, string action, string? instanceId, JsonObject? before, JsonObject? after, string? clientIp, CancellationToken cancellationToken) =>
        InsertAsync(AuditKinds.Admin, instanceId, actor, action, null, clientIp, Redact(before), Redact(after), cancellationToken);

    public async Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken)
    {
        var limit = Math.Clamp(query.Limit, 1, MaxPageSize);
        await using var lease = await connections.OpenReaderAsync(cancellationToken);
        var connection = lease.Connection;
        var rows = (await connection.QueryAsync<Row>(
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
            new { query.InstanceId, query.Kind, query.Action, query.BeforeId, Take = limit + 1 })).ToList();
        var page = rows.Take(limit).Select(row => new AuditEvent(
            row.Id, DateTimeOffset.FromUnixTimeMilliseconds(row.At), row.Kind, row.InstanceId, row.Actor, row.Action, row.Reason, row.ClientIp,
            row.BeforeJson is null ? null : JsonNode.Parse(row.BeforeJson), row.AfterJson is null ? null : JsonNode.Parse(row.AfterJson), row.Count)).ToList();
        return new AuditPage(page, rows.Count > limit ? page[^1].Id : null);
    }

    /// <summary>The latest login attempts of every instance, at most <paramref name="perInstance"/> each, in one query.</summary>
    public async Task<ILookup<string, AuditEvent>> RecentLoginsAsync(int perInstance, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenReaderAsync(cancellationToken);
        var connection = lease.Connection;
        var rows = await connection.QueryAsync<LoginRow>(
            """
            SELECT Id, At, Kind, InstanceId, Actor, Action, Reason, ClientIp, Count FROM (
                SELECT id AS Id, at AS At, kind AS Kind, instance_id AS InstanceId, actor AS Actor, action AS Action, reason AS Reason, client_ip AS ClientIp, count AS Count,
                       ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY id DESC) AS Position
                FROM audit_events WHERE kind = 'login' AND instance_id IS NOT NULL)
            WHERE Position <= @perInstance
            """,
            new { perInstance });
        return rows.ToLookup(row => row.InstanceId!, row => new AuditEvent(
            row.Id, DateTimeOffset.FromUnixTimeMilliseconds(row.At), row.Kind, row.InstanceId, row.Actor, row.Action, row.Reason, row.ClientIp, null, null, row.Count), StringComparer.Ordinal);
    }

    public async Task<int> PurgeAsync(CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow().Subtract(options.Value.Retention).ToUnixTimeMilliseconds();
        return await connections.DeleteInBatchesAsync("audit_events", "at < @cutoff", new Dictionary<string, object> { ["@cutoff"] = cutoff }, cancellationToken);
    }

    private const string CountRefusalSql = """
        INSERT INTO audit_events (at, kind, instance_id, action, reason, client_ip, bucket)
        VALUES (@at, 'login', @instanceId, 'refused', @reason, @clientIp, @bucket)
        ON CONFLICT (bucket) WHERE bucket IS NOT NULL DO UPDATE SET count = count + 1, at = excluded.at
        """;

    private const string InsertSql = """
        INSERT INTO audit_events (at, kind, instance_id, actor, action, reason, client_ip, before_json, after_json)
        VALUES (@at, @kind, @instanceId, @actor, @action, @reason, @clientIp, @before, @after)
        """;

    private async Task InsertAsync(string kind, string? instanceId, string? actor, string action, string? reason, string? clientIp, string? before, string? after, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenBatchedAsync(cancellationToken);
        await lease.Prepared(InsertSql)
            .With("@at", time.GetUtcNow().ToUnixTimeMilliseconds())
            .With("@kind", kind)
            .With("@instanceId", instanceId)
            .With("@actor", actor)
            .With("@action", action)
            .With("@reason", reason)
            .With("@clientIp", clientIp)
            .With("@before", before)
            .With("@after", after)
            .ExecuteNonQueryAsync(cancellationToken);
    }

    private static string? Redact(JsonObject? entry) => InstanceEntryRedaction.Redact(entry)?.ToJsonString();

    internal sealed record LoginRow(long Id, long At, string Kind, string? InstanceId, string? Actor, string Action, string? Reason, string? ClientIp, long Count);

    internal sealed record Row(long Id, long At, string Kind, string? InstanceId, string? Actor, string Action, string? Reason, string? ClientIp, string? BeforeJson, string? AfterJson, long Count);
}

public static class AuditSetup
{
    public static IServiceCollection AddAudit(this IServiceCollection services)
    {
        services.AddOptions<AuditOptions>().BindConfiguration(AuditOptions.Section)
            .Validate(options => options.Retention >= TimeSpan.FromHours(1), "Audit:Retention must be at least 01:00:00.")
            .Validate(options => options.RefusalSourcesPerMinute >= 1, "Audit:RefusalSourcesPerMinute must be at least 1.")
            .ValidateOnStart();
        services.AddSingleton<AuditLog>();
        services.AddSingleton<IPurgeable>(provider => provider.GetRequiredService<AuditLog>());
        return services;
    }
}
