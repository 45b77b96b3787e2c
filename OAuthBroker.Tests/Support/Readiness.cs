using System.Net;

namespace OAuthBroker.Tests.Support;

/// <summary>Waits for a broker in its own process to answer <c>/readyz</c> with 200.</summary>
public static class Readiness
{
    /// <param name="failed">Called between attempts; a message it returns ends the wait with that failure (the process exited).</param>
    public static async Task WaitAsync(string baseUrl, TimeSpan timeout, Func<string?>? failed = null)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (failed?.Invoke() is { } failure)
            {
                throw new InvalidOperationException(failure);
            }

            try
            {
                using var response = await http.GetAsync(baseUrl + "/readyz");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or System.Net.Sockets.SocketException)
            {
                // Not listening yet; a connection closed while it is opened surfaces as a bare SocketException.
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"The broker at {baseUrl} did not become ready within {timeout}.");
    }
}
