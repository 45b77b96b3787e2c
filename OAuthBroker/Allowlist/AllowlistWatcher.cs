using System.Threading.Channels;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;
using OAuthBroker.Storage;

namespace OAuthBroker.Allowlist;

/// <summary>
/// Reloads the allowlist when it changes: on file-system events for the file, on NOTIFY for PostgreSQL, and in both
/// cases by comparing its hash every Broker:AllowlistPollInterval, because watchers miss events on Docker bind mounts
/// and network file systems, and a notification sent while the listener reconnects is lost.
/// </summary>
public sealed class AllowlistWatcher(AllowlistProvider allowlist, IOptions<BrokerOptions> options, DatabaseChanges databaseChanges, TimeProvider time) : BrokerBackgroundService
{
    // Editors that write in several steps settle within this; an atomic rename needs none of it.
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(50);

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        var changes = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        var inDatabase = options.Value.UsesPostgres;
        using var watcher = !inDatabase && options.Value.WatchAllowlist ? Watch(Path.GetFullPath(options.Value.AllowlistPath), changes.Writer) : null;
        var polling = PollAsync(changes.Writer, stoppingToken);
        var notified = inDatabase ? ListenAsync(changes.Writer, stoppingToken) : Task.CompletedTask;

        await foreach (var _ in changes.Reader.ReadAllAsync(stoppingToken))
        {
            if (!inDatabase)
            {
                await Task.Delay(Settle, time, stoppingToken);
            }

            await allowlist.ReloadAsync(stoppingToken);
        }

        await Task.WhenAll(polling, notified);
    }

    private async Task ListenAsync(ChannelWriter<bool> changes, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await databaseChanges.NextAsync(DatabaseChanges.Allowlist).WaitAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            changes.TryWrite(true);
        }
    }

    private async Task PollAsync(ChannelWriter<bool> changes, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.AllowlistPollInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                changes.TryWrite(true);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static FileSystemWatcher Watch(string path, ChannelWriter<bool> changes)
    {
        var watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!)
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        void OnChange(object sender, FileSystemEventArgs change)
        {
            if (string.Equals(change.FullPath, path, StringComparison.Ordinal))
            {
                changes.TryWrite(true);
            }
        }

        watcher.Changed += OnChange;
        watcher.Created += OnChange;
        watcher.Renamed += (sender, change) => OnChange(sender, change);
        watcher.EnableRaisingEvents = true;
        return watcher;
    }
}
