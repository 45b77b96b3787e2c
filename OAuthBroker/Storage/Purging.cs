using OAuthBroker.Broker;

namespace OAuthBroker.Storage;

/// <summary>A store that deletes rows it no longer needs.</summary>
public interface IPurgeable
{
    string Name { get; }

    /// <summary>Deletes what has outlived its retention; returns how many rows.</summary>
    Task<int> PurgeAsync(CancellationToken cancellationToken);
}

/// <summary>Runs every store's purge at start and then every <see cref="Interval"/>, so no table grows without bound.</summary>
public sealed partial class PurgeService(IEnumerable<IPurgeable> stores, TimeProvider time, ILogger<PurgeService> logger) : BrokerBackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(5);

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            foreach (var store in stores)
            {
                try
                {
                    var deleted = await store.PurgeAsync(stoppingToken);
                    if (deleted > 0)
                    {
                        Log.Purged(logger, deleted, store.Name);
                    }
                }
                catch (System.Data.Common.DbException exception)
                {
                    Log.PurgeFailed(logger, store.Name, exception);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 6001, Level = LogLevel.Debug, Message = "Purged {Count} rows of {Store}")]
        public static partial void Purged(ILogger logger, int count, string store);

        [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "Purging {Store} failed; will retry")]
        public static partial void PurgeFailed(ILogger logger, string store, Exception exception);
    }
}
