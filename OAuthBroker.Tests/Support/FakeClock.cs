using Microsoft.Extensions.Time.Testing;

namespace OAuthBroker.Tests.Support;

/// <summary>Moving a fake clock while code under test waits on it.</summary>
public static class FakeClock
{
    /// <summary>
    /// Advances <paramref name="clock"/> in <paramref name="step"/>s, letting <paramref name="waiter"/> run between them,
    /// until <paramref name="span"/> has passed or the waiter has finished.
    /// </summary>
    public static async Task AdvanceWhilePendingAsync(this FakeTimeProvider clock, Task waiter, TimeSpan span, TimeSpan step)
    {
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentNullException.ThrowIfNull(waiter);
        for (var passed = TimeSpan.Zero; passed < span && !waiter.IsCompleted; passed += step)
        {
            clock.Advance(step);
            await Task.Delay(1);
        }
    }
}
