using Microsoft.Extensions.Options;
using OAuthBroker.Web;

namespace OAuthBroker.Login;

/// <summary>
/// A ceiling on logins started within one login lifetime, from every client together (<c>RateLimits:PendingLogins</c>):
/// per-client limits do not stop a botnet, and each start writes a row. Beyond it a start is turned away with 503 and
/// Retry-After, so the table stays bounded: rows live the login lifetime plus their retention, so at most a few times
/// the ceiling. Counted in memory, in ten-second slots; a restart starts the count again, which at most doubles it.
/// </summary>
public sealed class PendingLoginCeiling(IOptions<RateLimitOptions> limits, TimeProvider time)
{
    private static readonly TimeSpan Slot = TimeSpan.FromSeconds(10);
    private static readonly int Slots = (int)(PendingLoginStore.Lifetime / Slot);

    private readonly long[] slotIds = new long[Slots];
    private readonly int[] counts = new int[Slots];
    private readonly Lock gate = new();

    /// <summary>Counts one more start, or says how long until one fits.</summary>
    public bool TryAdmit(out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        var ceiling = limits.Value.PendingLogins;
        if (ceiling <= 0)
        {
            return true;
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var current = now / (long)Slot.TotalMilliseconds;
        lock (gate)
        {
            var total = 0L;
            var oldest = current;
            for (var i = 0; i < Slots; i++)
            {
                if (slotIds[i] > current - Slots && counts[i] > 0)
                {
                    total += counts[i];
                    oldest = Math.Min(oldest, slotIds[i]);
                }
            }

            if (total >= ceiling)
            {
                retryAfter = TimeSpan.FromMilliseconds(((oldest + Slots) * (long)Slot.TotalMilliseconds) - now);
                return false;
            }

            var index = (int)(current % Slots);
            if (slotIds[index] != current)
            {
                slotIds[index] = current;
                counts[index] = 0;
            }

            counts[index]++;
            return true;
        }
    }
}
