using System.Threading.Channels;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

namespace OAuthBroker.Allowlist;

/// <summary>
/// Reloads the allowlist when it changes: on file-system events, and by comparing its hash every
/// Broker:AllowlistPollInterval, because watchers miss events on Docker bind mounts and network file systems.
/// </summary>
public sealed class AllowlistWatcher(AllowlistProvider allowlist, IOptions<BrokerOptions> options, TimeProvider time) : BrokerBackgroundService
{
    // Editors that write in several steps settle within this; an atomic rename needs none of it.
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(50);

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        var changes = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        var path = Path.GetFullPath(options.Value.AllowlistPath);
        using var watcher = options.Value.WatchAllowlist ? Watch(path, changes.Writer) : null;
        var polling = PollAsync(changes.Writer, stoppingToken);

        await foreach (var _ in changes.Reader.ReadAllAsync(stoppingToken))
        {
            await Task.Delay(Settle, time, stoppingToken);
            allowlist.Reload();
        }

        await polling;
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
