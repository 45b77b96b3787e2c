using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.KeyRing;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;

namespace OAuthBroker.Broker;

/// <summary>
/// Runs before the server accepts requests: schema, signing key, allowlist. Any failure stops start-up with a
/// message that names what to fix.
/// </summary>
public sealed class BrokerStartup(IBrokerDatabase migrator, KeyRingGuard keyRing, SigningKeyStore keys, AllowlistProvider allowlist, IOptions<BrokerOptions> options) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.UsesPostgres)
        {
            // The file is checked first: a broken allowlist stops start-up before anything is written.
            await allowlist.LoadAsync(cancellationToken);
        }

        // Before the schema migrates: a missing key-encryption key stops start-up with nothing on disk changed.
        keyRing.EnsureReady();
        await migrator.MigrateAsync(cancellationToken);
        if (options.Value.UsesPostgres)
        {
            // In the database, encrypted with the key ring: read (or seeded) once both are ready.
            await allowlist.LoadAsync(cancellationToken);
        }

        await keys.LoadAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
