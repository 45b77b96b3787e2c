using OAuthBroker.Allowlist;
using OAuthBroker.KeyRing;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;

namespace OAuthBroker.Broker;

/// <summary>
/// Runs before the server accepts requests: schema, signing key, allowlist. Any failure stops start-up with a
/// message that names what to fix.
/// </summary>
public sealed class BrokerStartup(IBrokerDatabase migrator, KeyRingGuard keyRing, SigningKeyStore keys, AllowlistProvider allowlist) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        allowlist.Load();
        // Before the schema migrates: a missing key-encryption key stops start-up with nothing on disk changed.
        keyRing.EnsureReady();
        await migrator.MigrateAsync(cancellationToken);
        await keys.LoadAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
