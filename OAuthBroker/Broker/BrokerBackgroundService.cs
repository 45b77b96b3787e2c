namespace OAuthBroker.Broker;

/// <summary>
/// A background service that ends quietly when it is stopped. The host also cancels a service it disposes without
/// stopping it (when start-up failed after the service had begun), and would log that cancellation as a crash of the
/// service, beside the real reason start-up failed.
/// </summary>
public abstract class BrokerBackgroundService : BackgroundService
{
    protected sealed override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await RunAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    protected abstract Task RunAsync(CancellationToken stoppingToken);
}
