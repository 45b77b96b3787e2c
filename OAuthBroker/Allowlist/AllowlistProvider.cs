using Microsoft.Extensions.Options;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;

namespace OAuthBroker.Allowlist;

/// <summary>What the broker serves, and the last edit it refused (if any) while it kept serving the last good file.</summary>
public sealed record AllowlistStatus(AllowlistSnapshot Serving, string? Error, DateTimeOffset? ErrorAt, string? RefusedSha256)
{
    public bool IsStale => Error is not null;
}

/// <summary>The scopes an instance entry gets when it names none (from GitHub:Scopes, without needing the GitHub secret).</summary>
public sealed record AllowlistDefaults(IReadOnlyList<string> Scopes)
{
    public static AllowlistDefaults From(IConfiguration configuration) =>
        new(Allowlist.Scopes.Split(configuration[$"{GitHubOptions.Section}:{nameof(GitHubOptions.Scopes)}"] ?? GitHubOptions.DefaultScopeList));
}

/// <summary>
/// Holds the allowlist the broker serves. Readers take <see cref="Current"/> once per request; a reload builds a new
/// immutable snapshot and swaps it in whole, and an invalid file is refused as a whole, keeping the last good one.
/// </summary>
public sealed partial class AllowlistProvider(
    IOptions<BrokerOptions> brokerOptions,
    AllowlistDefaults defaults,
    IEnumerable<IAllowlistSupplement> supplements,
    TimeProvider time,
    ILogger<AllowlistProvider> logger)
{
    private readonly Lock reloading = new();
    private volatile AllowlistStatus? status;

    public AllowlistSnapshot Current => Status.Serving;

    public AllowlistStatus Status => status ?? throw new InvalidOperationException("The allowlist is read at start-up, before requests are served.");

    public bool IsLoaded => status is not null;

    private string FilePath => brokerOptions.Value.AllowlistPath;

    /// <summary>The first load, at start-up: an invalid file stops the broker.</summary>
    public void Load()
    {
        var snapshot = AllowlistFile.Load(FilePath, defaults.Scopes, supplements.SelectMany(supplement => supplement.Instances), time.GetUtcNow());
        status = new AllowlistStatus(snapshot, null, null, null);
        var fullPath = Path.GetFullPath(FilePath);
        Log.Loaded(logger, fullPath, snapshot.Instances.Count, snapshot.Sha256);
    }

    /// <summary>Reloads if the file's content changed; returns true when a new allowlist is now served.</summary>
    public bool Reload()
    {
        lock (reloading)
        {
            if (status is not { } current)
            {
                return false;
            }

            byte[] bytes;
            try
            {
                bytes = AllowlistFile.Read(FilePath);
            }
            catch (AllowlistException exception)
            {
                Refuse(current, exception.Message, sha256: null);
                return false;
            }

            var sha256 = AllowlistFile.Sha256(bytes);
            if (sha256 == current.Serving.Sha256)
            {
                if (current.IsStale)
                {
                    // The file was put back as it was: nothing to load, nothing stale any more.
                    status = current with { Error = null, ErrorAt = null, RefusedSha256 = null };
                }

                return false;
            }

            if (sha256 == current.RefusedSha256)
            {
                return false;
            }

            try
            {
                var snapshot = AllowlistFile.Build(FilePath, bytes, defaults.Scopes, supplements.SelectMany(supplement => supplement.Instances), time.GetUtcNow());
                status = new AllowlistStatus(snapshot, null, null, null);
                Log.Reloaded(logger, snapshot.Instances.Count, snapshot.Sha256);
                return true;
            }
            catch (AllowlistException exception)
            {
                Refuse(current, exception.Message, sha256);
                return false;
            }
        }
    }

    private void Refuse(AllowlistStatus current, string error, string? sha256)
    {
        if (current.Error == error && current.RefusedSha256 == sha256)
        {
            return;
        }

        status = current with { Error = error, ErrorAt = time.GetUtcNow(), RefusedSha256 = sha256 };
        Log.Refused(logger, current.Serving.Sha256, error);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Allowlist {Path} loaded: {InstanceCount} instances, sha256 {Sha256}")]
        public static partial void Loaded(ILogger logger, string path, int instanceCount, string sha256);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Allowlist reloaded: {InstanceCount} instances, sha256 {Sha256}")]
        public static partial void Reloaded(ILogger logger, int instanceCount, string sha256);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "Allowlist edit refused; still serving sha256 {ServingSha256}. {Error}")]
        public static partial void Refused(ILogger logger, string servingSha256, string error);
    }
}

public static class AllowlistSetup
{
    public static IServiceCollection AddAllowlist(this IServiceCollection services)
    {
        services.AddSingleton(provider => AllowlistDefaults.From(provider.GetRequiredService<IConfiguration>()));
        services.AddSingleton<AllowlistProvider>();
        services.AddSingleton<AllowlistEditor>();
        services.AddHostedService<AllowlistWatcher>();
        return services;
    }
}
