using Microsoft.Extensions.Options;
using Npgsql;
using OAuthBroker.Broker;

namespace OAuthBroker.Storage;

/// <summary>
/// Changes another process made to the shared database, as they happen: with PostgreSQL, its NOTIFY on a channel
/// (<see cref="SigningKeys"/>, <see cref="Allowlist"/>) wakes whoever waits here on every replica. With SQLite nothing is raised, and the
/// periodic reloads alone apply (one machine, and the CLI's changes are seen within their interval).
/// </summary>
public sealed class DatabaseChanges
{
    public const string SigningKeys = "oauthbroker_signing_keys";

    public const string Allowlist = "oauthbroker_allowlist";

    internal static readonly string[] Channels = [SigningKeys, Allowlist];

    private readonly Dictionary<string, TaskCompletionSource> next = Channels.ToDictionary(channel => channel, _ => NewSignal(), StringComparer.Ordinal);
    private readonly Lock gate = new();

    /// <summary>Completes at the next change on <paramref name="channel"/>.</summary>
    public Task NextAsync(string channel)
    {
        lock (gate)
        {
            return next[channel].Task;
        }
    }

    /// <summary>Wakes the waiters of <paramref name="channel"/>; those who wait again wait for the change after this one.</summary>
    public void Announce(string channel)
    {
        TaskCompletionSource raised;
        lock (gate)
        {
            if (!next.TryGetValue(channel, out raised!))
            {
                return;
            }

            next[channel] = NewSignal();
        }

        raised.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Listens on the change channels over one connection of its own while the broker runs on PostgreSQL, and raises each
/// notification in <see cref="DatabaseChanges"/>. After a lost connection it reconnects and raises every channel,
/// since notifications sent meanwhile are lost.
/// </summary>
public sealed partial class PostgresChangeListener(
    IOptions<BrokerOptions> options, IServiceProvider services, DatabaseChanges changes, ILogger<PostgresChangeListener> logger) : BrokerBackgroundService
{
    public static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(1);

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.UsesPostgres)
        {
            return;
        }

        var database = services.GetRequiredService<PostgresDatabase>();
        var reconnected = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await database.OpenAsync(stoppingToken);
                connection.Notification += (_, notification) => changes.Announce(notification.Channel);
                foreach (var channel in DatabaseChanges.Channels)
                {
                    // Channel names are our constants.
                    await PostgresDatabase.ExecuteOnAsync(connection, null, $"LISTEN {channel}", stoppingToken);
                }

                if (reconnected)
                {
                    Log.Reconnected(logger);
                    foreach (var channel in DatabaseChanges.Channels)
                    {
                        changes.Announce(channel);
                    }
                }

                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (NpgsqlException exception)
            {
                Log.Lost(logger, exception);
                reconnected = true;
                await Task.Delay(ReconnectDelay, stoppingToken);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "Listening for database changes failed; reconnecting")]
        public static partial void Lost(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 6005, Level = LogLevel.Information, Message = "Listening for database changes again; reloading what may have changed meanwhile")]
        public static partial void Reconnected(ILogger logger);
    }
}
