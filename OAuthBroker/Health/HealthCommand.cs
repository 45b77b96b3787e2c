using System.CommandLine;

namespace OAuthBroker.Health;

/// <summary>
/// <c>health</c>: asks the running broker's <c>/readyz</c> on the address it listens on and exits 0 (ready) or 1, for
/// Docker's HEALTHCHECK, since the runtime-deps image has no curl.
/// </summary>
public static class HealthCommand
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public static Command Create(IConfiguration configuration, TextWriter output)
    {
        var health = new Command("health", "Ask the running broker whether it is ready (GET /readyz on the address in Urls); exit 0 if it is, 1 if not.");
        health.SetAction(async (_, cancellationToken) =>
        {
            var url = ReadinessUrl(configuration["urls"]);
            using var http = new HttpClient { Timeout = Timeout };
            try
            {
                using var response = await http.GetAsync(url, cancellationToken);
                await output.WriteLineAsync($"{url}: {(int)response.StatusCode} {(response.IsSuccessStatusCode ? "ready" : "not ready")}");
                return response.IsSuccessStatusCode ? 0 : 1;
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
            {
                await output.WriteLineAsync($"{url}: not reachable ({exception.GetType().Name})");
                return 1;
            }
        });
        return health;
    }

    /// <summary>The first address Kestrel listens on, with a wildcard host (<c>+</c>, <c>*</c>, <c>0.0.0.0</c>, <c>[::]</c>) asked on loopback.</summary>
    public static Uri ReadinessUrl(string? urls)
    {
        var first = (urls ?? Broker.BuiltInDefaults.ListenAddress).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? Broker.BuiltInDefaults.ListenAddress;
        var wildcard = first.Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal).Replace("://[::]", "://127.0.0.1", StringComparison.Ordinal);
        return new Uri(new Uri(wildcard), "/readyz");
    }
}
