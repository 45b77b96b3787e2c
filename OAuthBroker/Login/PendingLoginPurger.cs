namespace OAuthBroker.Login;

/// <summary>Deletes finished and abandoned logins, so a flood of started-and-abandoned logins cannot grow the table without bound.</summary>
public sealed partial class PendingLoginPurger(PendingLoginStore logins, TimeProvider time, ILogger<PendingLoginPurger> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            try
            {
                var deleted = await logins.PurgeAsync(stoppingToken);
                if (deleted > 0)
                {
                    Log.Purged(logger, deleted);
                }
            }
            catch (Microsoft.Data.Sqlite.SqliteException exception)
            {
                Log.PurgeFailed(logger, exception);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2101, Level = LogLevel.Debug, Message = "Purged {Count} finished or expired pending logins")]
        public static partial void Purged(ILogger logger, int count);

        [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "Purging pending logins failed; will retry")]
        public static partial void PurgeFailed(ILogger logger, Exception exception);
    }
}
