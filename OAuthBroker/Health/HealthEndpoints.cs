using System.Text.Json.Serialization;
using Dapper;
using Microsoft.AspNetCore.Http.HttpResults;
using OAuthBroker.Allowlist;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;
using OAuthBroker.Web;

namespace OAuthBroker.Health;

public sealed record ReadinessCheck(string Name, bool Ready, string Detail)
{
    /// <summary>For the allowlist: an edit was refused and the last good file is still served.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? Stale { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Error { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? ErrorAt { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Sha256 { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DateTimeOffset? LoadedAt { get; init; }
}

public sealed record Readiness(bool Ready, IReadOnlyList<ReadinessCheck> Checks);

/// <summary>What anyone may know: ready or not. The checks name files, errors and key ids, which are for admins.</summary>
public sealed record ReadinessStatus(bool Ready);

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/healthz", () => TypedResults.Text("ok")).WithTags("Health");
        endpoints.MapGet("/readyz", GetReadinessStatusAsync).WithTags("Health");
        return endpoints;
    }

    /// <summary>GET /readyz, for load balancers and orchestrators: 200 or 503, and no detail an attacker could use.</summary>
    public static async Task<JsonHttpResult<ReadinessStatus>> GetReadinessStatusAsync(
        IBrokerDatabase database, AllowlistProvider allowlist, SigningKeyStore keys, CancellationToken cancellationToken)
    {
        var readiness = (await GetReadinessAsync(database, allowlist, keys, cancellationToken)).Value!;
        return TypedResults.Json(new ReadinessStatus(readiness.Ready), BrokerJsonContext.Default.ReadinessStatus, statusCode: StatusOf(readiness));
    }

    /// <summary>
    /// Ready when the database answers, the allowlist is loaded and a signing key is usable; each check with its detail
    /// (GET /admin/api/health).
    /// </summary>
    public static async Task<JsonHttpResult<Readiness>> GetReadinessAsync(
        IBrokerDatabase database, AllowlistProvider allowlist, SigningKeyStore keys, CancellationToken cancellationToken)
    {
        var checks = new List<ReadinessCheck>();
        var (ready, detail) = await database.CheckAsync(cancellationToken);
        checks.Add(new ReadinessCheck("database", ready, detail));

        checks.Add(allowlist.IsLoaded ? AllowlistCheck(allowlist.Status) : new ReadinessCheck("allowlist", false, "not loaded"));
        checks.Add(keys.HasActiveKey
            ? new ReadinessCheck("signing_key", true, $"{keys.Active.KeyId} ({keys.Active.Algorithm})")
            : new ReadinessCheck("signing_key", false, "no active signing key"));

        var readiness = new Readiness(checks.TrueForAll(check => check.Ready), checks);
        return TypedResults.Json(readiness, BrokerJsonContext.Default.Readiness, statusCode: StatusOf(readiness));
    }

    private static int StatusOf(Readiness readiness) => readiness.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;

    // A refused edit leaves the broker ready (it serves the last good list) but says so, with the error.
    private static ReadinessCheck AllowlistCheck(AllowlistStatus status) =>
        new("allowlist", true, status.IsStale
            ? $"stale: serving the last good allowlist ({status.Serving.Instances.Count} instances); the current file was refused"
            : $"{status.Serving.Instances.Count} instances")
        {
            Stale = status.IsStale,
            Error = status.Error,
            ErrorAt = status.ErrorAt,
            Sha256 = status.Serving.Sha256,
            LoadedAt = status.Serving.LoadedAt,
        };
}
