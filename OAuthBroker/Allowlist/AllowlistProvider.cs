using OAuthBroker.GitHub;
using OAuthBroker.Storage;
using OAuthBroker.Telemetry;

namespace OAuthBroker.Allowlist;

/// <summary>What the broker serves, and the last edit it refused (if any) while it kept serving the last good document.</summary>
public sealed record AllowlistStatus(AllowlistSnapshot Serving, string? Error, DateTimeOffset? ErrorAt, string? RefusedSha256)
{
    public bool IsStale => Error is not null;
}

/// <summary>The scopes an instance entry gets when it names none (from GitHub:Scopes, without needing the GitHub secret).</summary>
public sealed record AllowlistDefaults(IReadOnlyList<string> Scopes)
{
    public static AllowlistDefaults From(IConfiguration configuration) =>
        new(Allowlist.Scopes.Split(configuration[$"{GitHubOptions.Section}:{nameof(GitHubOptions.Scopes)}"] ?? GitHubOptions.DefaultScopeList));
}

/// <summary>
/// Holds the allowlist the broker serves. Readers take <see cref="Current"/> once per request; a reload builds a new
/// immutable snapshot and swaps it in whole, and an invalid document is refused as a whole, keeping the last good one.
/// </summary>
public sealed partial class AllowlistProvider(
    IAllowlistSource source,
    AllowlistDefaults defaults,
    IEnumerable<IAllowlistSupplement> supplements,
    TimeProvider time,
    BrokerMetrics metrics,
    ILogger<AllowlistProvider> logger) : IDisposable
{
    private readonly SemaphoreSlim reloading = new(1, 1);
    private volatile AllowlistStatus? status;
    private bool databaseAway;

    public AllowlistSnapshot Current => Status.Serving;

    public AllowlistStatus Status => status ?? throw new InvalidOperationException("The allowlist is read at start-up, before requests are served.");

    public bool IsLoaded => status is not null;

    /// <summary>The first load, at start-up: an invalid or missing allowlist stops the broker.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var stored = (await source.ReadAsync(null, cancellationToken))!;
        var snapshot = Build(stored);
        status = new AllowlistStatus(snapshot, null, null, null);
        Log.Loaded(logger, source.Location, snapshot.Instances.Count, snapshot.Sha256);
    }

    /// <summary>Reloads if the document changed; returns true when a new allowlist is now served.</summary>
    public async Task<bool> ReloadAsync(CancellationToken cancellationToken)
    {
        await reloading.WaitAsync(cancellationToken);
        try
        {
            if (status is not { } current)
            {
                return false;
            }

            StoredAllowlist? stored;
            try
            {
                stored = await source.ReadAsync(current.Serving.Sha256, cancellationToken);
            }
            catch (AllowlistException exception)
            {
                Refuse(current, exception.Message, sha256: null);
                return false;
            }
            catch (System.Data.Common.DbException exception)
            {
                // The database is away (readiness says so): the list in hand keeps serving, and the next poll tries again.
                if (!databaseAway)
                {
                    databaseAway = true;
                    metrics.AllowlistReloaded("unreachable");
                    Log.Unreachable(logger, current.Serving.Sha256, exception);
                }

                return false;
            }

            databaseAway = false;

            if (stored is null)
            {
                if (current.IsStale)
                {
                    // The document was put back as it was: nothing to load, nothing stale any more.
                    status = current with { Error = null, ErrorAt = null, RefusedSha256 = null };
                }

                return false;
            }

            if (stored.Sha256 == current.RefusedSha256)
            {
                return false;
            }

            try
            {
                var snapshot = Build(stored);
                status = new AllowlistStatus(snapshot, null, null, null);
                metrics.AllowlistReloaded("loaded");
                Log.Reloaded(logger, snapshot.Instances.Count, snapshot.Sha256);
                return true;
            }
            catch (AllowlistException exception)
            {
                Refuse(current, exception.Message, stored.Sha256);
                return false;
            }
        }
        finally
        {
            reloading.Release();
        }
    }

    public void Dispose() => reloading.Dispose();

    private AllowlistSnapshot Build(StoredAllowlist stored) =>
        AllowlistFile.Build(source.Location, stored.Bytes, defaults.Scopes, supplements.SelectMany(supplement => supplement.Instances), time.GetUtcNow());

    private void Refuse(AllowlistStatus current, string error, string? sha256)
    {
        if (current.Error == error && current.RefusedSha256 == sha256)
        {
            return;
        }

        status = current with { Error = error, ErrorAt = time.GetUtcNow(), RefusedSha256 = sha256 };
        metrics.AllowlistReloaded("refused");
        Log.Refused(logger, current.Serving.Sha256, error);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "{Location} loaded: {InstanceCount} instances, sha256 {Sha256}")]
        public static partial void Loaded(ILogger logger, string location, int instanceCount, string sha256);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Allowlist reloaded: {InstanceCount} instances, sha256 {Sha256}")]
        public static partial void Reloaded(ILogger logger, int instanceCount, string sha256);

        [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "The allowlist could not be read from the database; still serving sha256 {ServingSha256}")]
        public static partial void Unreachable(ILogger logger, string servingSha256, Exception exception);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "Allowlist edit refused; still serving sha256 {ServingSha256}. {Error}")]
        public static partial void Refused(ILogger logger, string servingSha256, string error);
    }
}

public static class AllowlistSetup
{
    public static IServiceCollection AddAllowlist(this IServiceCollection services)
    {
        services.AddSingleton(provider => AllowlistDefaults.From(provider.GetRequiredService<IConfiguration>()));
        services.AddBrokerMetrics();
        services.AddStore<IAllowlistSource, FileAllowlistSource, PostgresAllowlistSource>();
        services.AddSingleton<AllowlistProvider>();
        services.AddSingleton<AllowlistEditor>();
        services.AddHostedService<AllowlistWatcher>();
        services.AddExceptionHandler<AllowlistBusyHandler>();
        return services;
    }
}
