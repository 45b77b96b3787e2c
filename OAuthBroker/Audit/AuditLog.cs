using System.Text.Json.Nodes;
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

    /// <summary>A request at the token endpoint (a refresh through the relay): outcome <c>succeeded</c>, <c>invalid_grant</c>, <c>invalid_client</c>, <c>github_error</c>…</summary>
    public const string Token = "token";

    /// <summary>A user on /account: <c>grant_revoked</c> (disconnected from every instance) or <c>grant_revoke_failed</c>.</summary>
    public const string Account = "account";

    /// <summary>A GitHub App webhook the broker acted on: <c>app_authorization_revoked</c>, <c>installation.deleted</c>, <c>installation.suspend</c>…</summary>
    public const string Webhook = "webhook";
}

/// <summary>One event, or for refusals (<see cref="Count"/> above 1) the refusals of one source, reason and minute.</summary>
public sealed record AuditEvent(long Id, DateTimeOffset At, string Kind, string? InstanceId, string? Actor, string Action, string? Reason, string? ClientIp, JsonNode? Before, JsonNode? After, long Count = 1);

public sealed record AuditQuery(string? InstanceId, string? Kind, string? Action, long? BeforeId, int Limit);

public sealed record AuditPage(IReadOnlyList<AuditEvent> Events, long? NextBeforeId);

/// <summary>
/// Who changed the allowlist and every login attempt. Instance entries are recorded with any shared secret (an
/// <c>oct</c> key's <c>k</c>) replaced by a fingerprint: the audit trail holds no secret.
/// </summary>
public sealed class AuditLog(IAuditRepository rows, IOptions<AuditOptions> options, TimeProvider time) : IPurgeable
{
    public const int MaxPageSize = 200;

    public string Name => "audit_events";

    private readonly Lock sourcesGate = new();
    private readonly HashSet<string> sourcesThisMinute = new(StringComparer.Ordinal);
    private long sourcesMinute;

    public Task RecordLoginAsync(string? instanceId, string? gitHubLogin, string outcome, string? reason, string? clientIp, CancellationToken cancellationToken) =>
        InsertAsync(AuditKinds.Login, instanceId, gitHubLogin, outcome, reason, clientIp, null, null, cancellationToken);

    public Task RecordTokenRequestAsync(string? instanceId, string? gitHubLogin, string outcome, string? reason, string? clientIp, CancellationToken cancellationToken) =>
        InsertAsync(AuditKinds.Token, instanceId, gitHubLogin, outcome, reason, clientIp, null, null, cancellationToken);

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
        await rows.CountRefusalAsync(now.ToUnixTimeMilliseconds(), instanceId, reason, source, bucket, cancellationToken);
    }

    public Task RecordAccountAsync(string gitHubLogin, string action, string? reason, string? clientIp, CancellationToken cancellationToken) =>
        InsertAsync(AuditKinds.Account, null, gitHubLogin, action, reason, clientIp, null, null, cancellationToken);

    public Task RecordWebhookAsync(string? instanceId, string? gitHubLogin, string action, string? reason, CancellationToken cancellationToken) =>
        InsertAsync(AuditKinds.Webhook, instanceId, gitHubLogin, action, reason, null, null, null, cancellationToken);

    public Task RecordAdminAsync(string actor, string action, string? instanceId, JsonObject? before, JsonObject? after, string? clientIp, CancellationToken cancellationToken) =>
        InsertAsync(AuditKinds.Admin, instanceId, actor, action, null, clientIp, Redact(before), Redact(after), cancellationToken);

    public async Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var limit = Math.Clamp(query.Limit, 1, MaxPageSize);
        var found = await rows.QueryAsync(query, limit + 1, cancellationToken);
        var page = found.Take(limit).Select(row => row.ToEvent(withEntries: true)).ToList();
        return new AuditPage(page, found.Count > limit ? page[^1].Id : null);
    }

    /// <summary>The latest login attempts of every instance, at most <paramref name="perInstance"/> each, in one query.</summary>
    public async Task<ILookup<string, AuditEvent>> RecentLoginsAsync(int perInstance, CancellationToken cancellationToken) =>
        (await rows.RecentLoginsAsync(perInstance, cancellationToken)).ToLookup(row => row.InstanceId!, row => row.ToEvent(withEntries: false), StringComparer.Ordinal);

    /// <summary>
    /// Login rows of the last <paramref name="buckets"/> whole buckets of <paramref name="bucket"/> (hours, days), the
    /// current one included, aligned to UTC: bucket 0 is the oldest. Also returns where bucket 0 starts.
    /// </summary>
    public async Task<(DateTimeOffset Start, IReadOnlyList<LoginActivity> Rows)> LoginActivityAsync(TimeSpan bucket, int buckets, CancellationToken cancellationToken)
    {
        var size = (long)bucket.TotalMilliseconds;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var start = (now / size - (buckets - 1)) * size;
        return (DateTimeOffset.FromUnixTimeMilliseconds(start), await rows.LoginActivityAsync(start, size, cancellationToken));
    }

    public Task<int> PurgeAsync(CancellationToken cancellationToken) =>
        rows.DeleteBeforeAsync(time.GetUtcNow().Subtract(options.Value.Retention).ToUnixTimeMilliseconds(), cancellationToken);

    private Task InsertAsync(string kind, string? instanceId, string? actor, string action, string? reason, string? clientIp, string? before, string? after, CancellationToken cancellationToken) =>
        rows.InsertAsync(new AuditRow(0, time.GetUtcNow().ToUnixTimeMilliseconds(), kind, instanceId, actor, action, reason, clientIp, before, after, 1), cancellationToken);

    private static string? Redact(JsonObject? entry) => InstanceEntryRedaction.Redact(entry)?.ToJsonString();
}
public static class AuditSetup
{
    public static IServiceCollection AddAudit(this IServiceCollection services)
    {
        services.AddOptions<AuditOptions>().BindConfiguration(AuditOptions.Section)
            .Validate(options => options.Retention >= TimeSpan.FromHours(1), "Audit:Retention must be at least 01:00:00.")
            .Validate(options => options.RefusalSourcesPerMinute >= 1, "Audit:RefusalSourcesPerMinute must be at least 1.")
            .ValidateOnStart();
        services.AddStore<IAuditRepository, SqliteAuditRepository, PostgresAuditRepository>();
        services.AddSingleton<AuditLog>();
        services.AddSingleton<IPurgeable>(provider => provider.GetRequiredService<AuditLog>());
        return services;
    }
}
