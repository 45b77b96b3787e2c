using Microsoft.Extensions.Options;
using OAuthBroker.Web;

namespace OAuthBroker.Broker;

/// <summary>Settings of the broker itself (configuration section <c>Broker</c>).</summary>
public sealed class BrokerOptions
{
    public const string Section = "Broker";

    private string publicUrl = "";
    private string? pathBase;

    /// <summary>The broker's external URL: the JWT <c>iss</c> and the base of its GitHub callback.</summary>
    public string PublicUrl
    {
        get => publicUrl;
        set
        {
            publicUrl = value;
            pathBase = null;
        }
    }

    public string AllowlistPath { get; set; } = "allowed-redirects.json";

    public string DataPath { get; set; } = "data";

    /// <summary><c>sqlite</c> (one process, the database in <see cref="DataPath"/>) or <c>postgres</c> (<c>ConnectionStrings:Broker</c>, shared by replicas).</summary>
    public string Database { get; set; } = SqliteDatabase;

    public const string SqliteDatabase = "sqlite";
    public const string PostgresDatabase = "postgres";

    public bool UsesPostgres => Database == PostgresDatabase;

    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Lifetime of a JWT handed back in a URL (<c>query</c> and <c>fragment</c> modes), where proxy logs and browser
    /// history keep it: the instance only needs it long enough to open its own session at the callback.
    /// </summary>
    public TimeSpan UrlTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The lifetime of a JWT delivered in <paramref name="responseMode"/>: never longer than <see cref="TokenLifetime"/>.</summary>
    public TimeSpan TokenLifetimeFor(string responseMode) =>
        responseMode == Login.InstanceResponse.FormPost ? TokenLifetime : TimeSpan.FromTicks(Math.Min(UrlTokenLifetime.Ticks, TokenLifetime.Ticks));

    public string SigningAlgorithm { get; set; } = "ES256";

    /// <summary>How often the allowlist's hash is compared, besides file-system events.</summary>
    public TimeSpan AllowlistPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Reverse proxies whose X-Forwarded-For is believed (loopback always is).</summary>
    public string[] TrustedProxies { get; set; } = [];

    /// <summary>File-system events on the allowlist; turn off where inotify is unavailable (polling still runs).</summary>
    public bool WatchAllowlist { get; set; } = true;

    /// <summary>PublicUrl without a trailing slash, so paths can be appended.</summary>
    public string Issuer => PublicUrl.TrimEnd('/');

    public string CallbackUrl => Issuer + "/auth/github/callback";

    /// <summary>Browsers reach the broker over https (directly or through a TLS proxy): Secure and __Host- cookies, HSTS.</summary>
    public bool IsServedOverHttps => Issuer.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    /// <summary>The path of PublicUrl: "" at the host's root, "/oauth" for https://example.com/oauth.</summary>
    /// <remarks>Parsed once: every login's cookie and every admin link asks for it.</remarks>
    public string PathBase => pathBase ??= Uri.TryCreate(Issuer, UriKind.Absolute, out var uri) ? uri.AbsolutePath.TrimEnd('/') : "";

    /// <summary>Where the broker's cookies apply: its own path, so that an application beside it on the host gets none.</summary>
    public string CookiePath => PathBase.Length == 0 ? "/" : PathBase;

    /// <summary>
    /// The name of one of the broker's cookies. A Secure one takes <c>__Host-</c> (Secure, host-only, Path=/) at the root,
    /// and <c>__Secure-</c> under a path prefix, since browsers refuse a <c>__Host-</c> cookie whose path is not /.
    /// </summary>
    public string CookieName(string name, bool secure) => !secure ? name : PathBase.Length == 0 ? "__Host-" + name : "__Secure-" + name;

    /// <summary>A path of the broker as browsers see it, the prefix of PublicUrl included: "/admin" becomes "/oauth/admin".</summary>
    public string BrowserPath(string path) => PathBase + path;

    public string DatabasePath => Path.Combine(Path.GetFullPath(DataPath), "broker.db");
}

/// <param name="requirePublicUrl">False for the admin commands, which never hand out a URL.</param>
public sealed class BrokerOptionsValidator(bool requirePublicUrl = true) : IValidateOptions<BrokerOptions>
{
    public ValidateOptionsResult Validate(string? name, BrokerOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.PublicUrl))
        {
            if (requirePublicUrl)
            {
                errors.Add("Broker:PublicUrl is required: the URL browsers reach the broker at, such as https://oauth.example.com (environment variable Broker__PublicUrl). "
                    + "Only a broker listening on one loopback address (Urls, default " + BuiltInDefaults.ListenAddress + ") takes it from there.");
            }
        }
        else if (ConfiguredUrl.Check(options.PublicUrl) is { } urlError)
        {
            errors.Add($"Broker:PublicUrl {urlError} (environment variable Broker__PublicUrl).");
        }

        if (string.IsNullOrWhiteSpace(options.AllowlistPath))
        {
            errors.Add("Broker:AllowlistPath must name the allowlist file (default allowed-redirects.json).");
        }

        if (string.IsNullOrWhiteSpace(options.DataPath))
        {
            errors.Add("Broker:DataPath must name a folder for the database and key ring (default data).");
        }

        if (options.TokenLifetime < TimeSpan.FromMinutes(1) || options.TokenLifetime > TimeSpan.FromDays(1))
        {
            errors.Add($"Broker:TokenLifetime must be between 00:01:00 and 1.00:00:00; it is {options.TokenLifetime}.");
        }

        if (options.UrlTokenLifetime < TimeSpan.FromMinutes(1) || options.UrlTokenLifetime > TimeSpan.FromDays(1))
        {
            errors.Add($"Broker:UrlTokenLifetime must be between 00:01:00 and 1.00:00:00; it is {options.UrlTokenLifetime}.");
        }

        if (options.AllowlistPollInterval < TimeSpan.FromMilliseconds(100) || options.AllowlistPollInterval > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Broker:AllowlistPollInterval must be between 00:00:00.1 and 00:01:00; it is {options.AllowlistPollInterval}.");
        }

        foreach (var proxy in options.TrustedProxies.Where(proxy => !System.Net.IPAddress.TryParse(proxy, out _)))
        {
            errors.Add($"Broker:TrustedProxies has '{proxy}', which is not an IP address.");
        }

        if (options.Database is not (BrokerOptions.SqliteDatabase or BrokerOptions.PostgresDatabase))
        {
            errors.Add($"Broker:Database must be sqlite or postgres; it is '{options.Database}'.");
        }

        if (options.SigningAlgorithm is not ("ES256" or "RS256"))
        {
            errors.Add($"Broker:SigningAlgorithm must be ES256 or RS256; it is '{options.SigningAlgorithm}'.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

public static class BrokerSetup
{
    public static IServiceCollection AddBrokerOptions(this IServiceCollection services, bool requirePublicUrl = true)
    {
        services.AddOptions<BrokerOptions>().BindConfiguration(BrokerOptions.Section).ValidateOnStart();
        services.AddSingleton<IPostConfigureOptions<BrokerOptions>, PublicUrlFromListenAddress>();
        services.AddSingleton<IValidateOptions<BrokerOptions>>(new BrokerOptionsValidator(requirePublicUrl));
        services.AddSingleton(TimeProvider.System);
        // First hosted service: schema, keys and allowlist are ready before anything else starts.
        services.AddHostedService<BrokerStartup>();
        return services;
    }
}
