using System.CommandLine;

namespace OAuthBroker.Tokens;

/// <summary><c>keys list</c> and <c>keys rotate</c>.</summary>
public static class KeyCommands
{
    public static Command Create(IServiceProvider services, TextWriter output)
    {
        var list = new Command("list", "List the signing keys and how long each is honoured.");
        list.SetAction(async (_, cancellationToken) =>
        {
            await services.GetRequiredService<Storage.DatabaseMigrator>().MigrateAsync(cancellationToken);
            var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
            foreach (var key in await services.GetRequiredService<SigningKeyStore>().ListAsync(cancellationToken))
            {
                var state = key.RetiredAt is null ? "active"
                    : key.HonouredUntil > now ? $"retired, in the JWKS until {key.HonouredUntil:u}"
                    : "expired";
                await output.WriteLineAsync($"{key.KeyId}  {key.Algorithm}  created {key.CreatedAt:u}  {state}");
            }

            return 0;
        });

        var rotate = new Command("rotate", "Make a new signing key; the old one stays in the JWKS until every token it signed has expired.");
        rotate.SetAction(async (_, cancellationToken) =>
        {
            await services.GetRequiredService<Storage.DatabaseMigrator>().MigrateAsync(cancellationToken);
            var store = services.GetRequiredService<SigningKeyStore>();
            await store.LoadAsync(cancellationToken);
            var active = await store.RotateAsync(cancellationToken);
            await output.WriteLineAsync($"New signing key {active.KeyId} ({active.Algorithm}). A running broker signs with it within {SigningKeyRefresher.Interval.TotalSeconds:0} s.");
            return 0;
        });

        return new Command("keys", "Manage the broker's signing keys.") { list, rotate };
    }
}
