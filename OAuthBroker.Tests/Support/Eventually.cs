namespace OAuthBroker.Tests.Support;

/// <summary>The one wait-until of the tests: for what a background service or another process does in its own time.</summary>
public static class Eventually
{
    /// <summary>Checks <paramref name="condition"/> until it holds or <paramref name="timeout"/> has passed; returns whether it held.</summary>
    public static async Task<bool> HoldsWithinAsync(TimeSpan timeout, Func<Task<bool>> condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }

            await Task.Delay(25);
        }

        return true;
    }
}
