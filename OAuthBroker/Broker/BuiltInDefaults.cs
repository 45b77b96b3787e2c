using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Options;

namespace OAuthBroker.Broker;

/// <summary>
/// The defaults of the settings that are not options of ours (where Kestrel listens, log levels), carried by the
/// build itself: the native executable, a build folder's <c>OAuthBroker.dll</c>, the Docker image and the command
/// line behave as the configuration reference says with no <c>appsettings.json</c> beside them. Every other default
/// lives in its options class. They are the lowest configuration source, so a file, a variable or an argument wins.
/// </summary>
public static class BuiltInDefaults
{
    public const string ListenAddress = "http://127.0.0.1:5080";

    public static readonly IReadOnlyDictionary<string, string?> Settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
    {
        ["Urls"] = ListenAddress,
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:System.Net.Http.HttpClient"] = "Warning",
        ["Logging:LogLevel:Polly"] = "Warning",
    };

    public static ConfigurationManager AddBuiltInDefaults(this ConfigurationManager configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = Settings });
        return configuration;
    }

    /// <summary>
    /// The one address in <paramref name="urls"/> when it is a loopback http(s) URL with a port: there the broker can
    /// take its public URL from where it listens (a demo or a first run on another port). Anywhere else browsers reach
    /// it by a name only the operator knows, so <c>Broker:PublicUrl</c> must be given.
    /// </summary>
    public static string? SingleLoopbackAddress(string? urls)
    {
        var addresses = (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return addresses.Length == 1
            && Uri.TryCreate(addresses[0], UriKind.Absolute, out var uri)
            && uri.Scheme is "http" or "https"
            && uri.IsLoopback && uri.Host is "127.0.0.1" or "localhost" or "[::1]"
            && uri.Port > 0 && uri.AbsolutePath == "/" && uri.Query.Length == 0
                ? uri.GetLeftPart(UriPartial.Authority)
                : null;
    }
}

/// <summary>Without <c>Broker:PublicUrl</c>, a broker that listens on one loopback address is reached there.</summary>
public sealed class PublicUrlFromListenAddress(IConfiguration configuration) : IPostConfigureOptions<BrokerOptions>
{
    public void PostConfigure(string? name, BrokerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.PublicUrl) && BuiltInDefaults.SingleLoopbackAddress(configuration["Urls"]) is { } address)
        {
            options.PublicUrl = address;
        }
    }
}
