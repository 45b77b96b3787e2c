using Microsoft.Extensions.Options;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;

namespace OAuthBroker.Allowlist;

/// <summary>Holds the allowlist the broker serves; readers take <see cref="Current"/> once per request.</summary>
public sealed partial class AllowlistProvider(
    IOptions<BrokerOptions> brokerOptions,
    IOptions<GitHubOptions> gitHubOptions,
    IEnumerable<IAllowlistSupplement> supplements,
    TimeProvider time,
    ILogger<AllowlistProvider> logger)
{
    private volatile AllowlistSnapshot? current;

    public AllowlistSnapshot Current => current ?? throw new InvalidOperationException("The allowlist is read at start-up, before requests are served.");

    public bool IsLoaded => current is not null;

    /// <summary>Reads the file and swaps the new snapshot in; on any problem throws and keeps what it had.</summary>
    public void Load()
    {
        var snapshot = AllowlistFile.Load(
            brokerOptions.Value.AllowlistPath,
            gitHubOptions.Value.DefaultScopes,
            supplements.SelectMany(supplement => supplement.Instances),
            time.GetUtcNow());
        current = snapshot;
        var fullPath = Path.GetFullPath(brokerOptions.Value.AllowlistPath);
        Log.Loaded(logger, fullPath, snapshot.Instances.Count, snapshot.Sha256);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Allowlist {Path} loaded: {InstanceCount} instances, sha256 {Sha256}")]
        public static partial void Loaded(ILogger logger, string path, int instanceCount, string sha256);
    }
}

public static class AllowlistSetup
{
    public static IServiceCollection AddAllowlist(this IServiceCollection services) => services.AddSingleton<AllowlistProvider>();
}
