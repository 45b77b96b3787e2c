using OAuthBroker.Broker;
using OAuthBroker.Storage;

namespace OAuthBroker.Tokens;

/// <summary>
/// Re-reads the signing keys now and then, so a rotation made with the CLI (another process) reaches the running
/// broker, and retired keys leave the JWKS once every token they signed has expired.
/// </summary>
public sealed partial class SigningKeyRefresher(SigningKeyStore keys, DatabaseChanges changes, TimeProvider time, ILogger<SigningKeyRefresher> logger) : BrokerBackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        Task<bool>? tick = null;
        while (true)
        {
            // A rotation another replica announces (PostgreSQL) reloads at once; the timer catches everything else.
            tick ??= timer.WaitForNextTickAsync(stoppingToken).AsTask();
            var woke = await Task.WhenAny(tick, changes.NextAsync(DatabaseChanges.SigningKeys).WaitAsync(stoppingToken));
            if (woke == tick)
            {
                if (!await tick)
                {
                    return;
                }

                tick = null;
            }

            stoppingToken.ThrowIfCancellationRequested();
            try
            {
                await keys.LoadAsync(stoppingToken);
            }
            catch (System.Data.Common.DbException exception)
            {
                Log.RefreshFailed(logger, exception);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Reloading the signing keys failed; keeping the ones loaded")]
        public static partial void RefreshFailed(ILogger logger, Exception exception);
    }
}
