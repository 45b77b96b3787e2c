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
            await services.GetRequiredService<Storage.IBrokerDatabase>().MigrateAsync(cancellationToken);
            var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
            foreach (var key in await services.GetRequiredService<SigningKeyStore>().ListAsync(cancellationToken))
            {
                await output.WriteLineAsync($"{key.KeyId}  {key.Algorithm}  created {key.CreatedAt:u}  {Describe(key, now)}");
            }

            return 0;
        });

        var immediately = new Option<bool>("--now")
        {
            Description = "For a compromised key: the new key signs at once and the earlier keys leave the JWKS at once (tokens they signed stop verifying).",
        };
        var rotate = new Command("rotate", "Make a new signing key. It is published in the JWKS at once and signs once instances' cached JWKS hold it; earlier keys stay until their tokens expire.") { immediately };
        rotate.SetAction(async (parse, cancellationToken) =>
        {
            // The new key is protected with the key ring, which needs the key-encryption key: say so before anything is written.
            services.GetRequiredService<KeyRing.KeyRingGuard>().EnsureReady();
            await services.GetRequiredService<Storage.IBrokerDatabase>().MigrateAsync(cancellationToken);
            var store = services.GetRequiredService<SigningKeyStore>();
            await store.LoadAsync(cancellationToken);
            var compromised = parse.GetValue(immediately);
            var created = await store.RotateAsync(compromised, cancellationToken);
            var refresh = $"{SigningKeyRefresher.Interval.TotalSeconds:0} s";
            await output.WriteLineAsync(compromised
                ? $"New signing key {created.KeyId} ({created.Algorithm}) signs now; the earlier keys are withdrawn. A running broker follows within {refresh}; instances drop the old keys when their cached JWKS expires ({TokenEndpoints.JwksCacheLifetime.TotalSeconds:0} s)."
                : $"New signing key {created.KeyId} ({created.Algorithm}) is published in the JWKS and signs from {created.ActivatesAt:u} (the JWKS cache lifetime of {TokenEndpoints.JwksCacheLifetime.TotalSeconds:0} s plus the {refresh} a running broker takes to see it). For a compromised key: keys rotate --now.");
            return 0;
        });

        return new Command("keys", "Manage the broker's signing keys.") { list, rotate };
    }

    private static string Describe(SigningKeyInfo key, DateTimeOffset now)
    {
        var signs = key.RetiredAt is not { } retiredAt || retiredAt > key.ActivatesAt;
        return (key.ActivatesAt > now, key.RetiredAt) switch
        {
            (true, _) when signs => $"published, signs from {key.ActivatesAt:u}",
            (_, null) => "active",
            (false, { } retired) when retired > now => $"active until {retired:u}",
            _ when key.HonouredUntil > now => $"retired, in the JWKS until {key.HonouredUntil:u}",
            _ => "withdrawn or expired",
        };
    }
}
