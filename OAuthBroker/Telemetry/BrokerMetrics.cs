using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace OAuthBroker.Telemetry;

/// <summary>
/// The broker's own instruments (meter <c>OAuthBroker</c>). Labels are bounded and never secret: instance ids come
/// from the allowlist, outcomes and endpoints from fixed lists; no token, code, state or redirect URI is ever one.
/// </summary>
public sealed class BrokerMetrics
{
    public const string MeterName = "OAuthBroker";

    private readonly Counter<long> loginsStarted;
    private readonly Counter<long> loginsFinished;
    private readonly Histogram<double> gitHubDuration;
    private readonly Counter<long> rateLimitRefusals;
    private readonly Counter<long> allowlistReloads;
    private readonly Histogram<double> databaseDuration;

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000", Justification = "The meter factory owns the meters it creates and disposes of them with the host.")]
    public BrokerMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeterName);
        loginsStarted = meter.CreateCounter<long>("oauthbroker.logins.started", "{login}", "Logins started, by instance.");
        loginsFinished = meter.CreateCounter<long>("oauthbroker.logins.finished", "{login}", "Logins finished, by instance and outcome (succeeded, denied, github_error, refused), as in the audit trail.");
        gitHubDuration = meter.CreateHistogram<double>("oauthbroker.github.request.duration", "s", "Calls to GitHub, by endpoint and outcome (ok, rejected, malformed, unavailable).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        rateLimitRefusals = meter.CreateCounter<long>("oauthbroker.rate_limit.refusals", "{request}", "Requests refused by a rate limit or the pending-login ceiling, by limit.");
        allowlistReloads = meter.CreateCounter<long>("oauthbroker.allowlist.reloads", "{reload}", "Allowlist changes seen, by result (loaded, refused, unreachable).");
        databaseDuration = meter.CreateHistogram<double>("oauthbroker.db.operation.duration", "s", "Database operations on the login path, by operation.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
    }

    public void LoginStarted(string instanceId) => loginsStarted.Add(1, new KeyValuePair<string, object?>("instance", instanceId));

    public void LoginFinished(string? instanceId, string outcome) =>
        loginsFinished.Add(1, new KeyValuePair<string, object?>("instance", instanceId ?? "unknown"), new KeyValuePair<string, object?>("outcome", outcome));

    public void GitHubCalled(string endpoint, string outcome, TimeSpan elapsed) =>
        gitHubDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("endpoint", endpoint), new KeyValuePair<string, object?>("outcome", outcome));

    public void RateLimited(string limit) => rateLimitRefusals.Add(1, new KeyValuePair<string, object?>("limit", limit));

    public void AllowlistReloaded(string result) => allowlistReloads.Add(1, new KeyValuePair<string, object?>("result", result));

    /// <summary>Times a database operation: <c>using (metrics.TimeDatabase("consume")) { … }</c>.</summary>
    public DatabaseTiming TimeDatabase(string operation) => new(this, operation, Stopwatch.GetTimestamp());

    public readonly record struct DatabaseTiming(BrokerMetrics Metrics, string Operation, long Started) : IDisposable
    {
        public void Dispose() =>
            Metrics.databaseDuration.Record(Stopwatch.GetElapsedTime(Started).TotalSeconds, new KeyValuePair<string, object?>("operation", Operation));
    }
}
