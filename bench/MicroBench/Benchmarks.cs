using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Jose;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Login;
using OAuthBroker.Storage;
using OAuthBroker.Telemetry;
using OAuthBroker.Tokens;
using OAuthBroker.Users;

namespace MicroBench;

/// <summary>Redirect-URI matching against allowlists of 10 and 10,000 instances, hit and miss.</summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 8)]
public class RedirectMatching
{
    private AllowlistSnapshot snapshot = null!;
    private string hit = "";

    [Params(10, 10_000)]
    public int Instances { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var instances = Enumerable.Range(0, Instances).Select(i => new { id = $"instance-{i}", redirectUris = new[] { $"https://i{i}.example.com/auth/callback" }, deliverAccessToken = false });
        var (parsed, errors) = AllowlistFile.Parse(JsonSerializer.SerializeToUtf8Bytes(new { instances }), ["read:user"]);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", errors));
        }

        snapshot = new AllowlistSnapshot(parsed, "bench", DateTimeOffset.UnixEpoch);
        hit = $"https://i{Instances / 2}.example.com/auth/callback";
    }

    [Benchmark]
    public bool Hit() => snapshot.TryMatch(hit, out _, out _);

    [Benchmark]
    public bool Miss() => snapshot.TryMatch("https://i5.example.com/auth/callback/", out _, out _);

    [Benchmark]
    public bool Refused() => snapshot.TryMatch("https://i5.example.com\\@evil.com/auth/callback", out _, out _);
}

/// <summary>Encrypting a GitHub token to an instance, per key type.</summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 8)]
public class TokenEncryption
{
    private InstanceEncryptionKey key = null!;

    [Params("RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "A256KW", "dir")]
    public string Algorithm { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        IDictionary<string, object> jwk = Algorithm switch
        {
            "RSA-OAEP-256" or "RSA-OAEP" => new Jwk(RSA.Create(2048), false).ToDictionary(),
            "ECDH-ES+A256KW" => new Jwk(ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256), false).ToDictionary(),
            _ => new Jwk(RandomNumberGenerator.GetBytes(32)).ToDictionary(),
        };
        jwk["alg"] = Algorithm;
        using var document = JsonDocument.Parse(JsonSerializer.Serialize(jwk));
        if (!InstanceEncryptionKey.TryParse(document.RootElement, out var parsed, out var error))
        {
            throw new InvalidOperationException(error);
        }

        key = parsed;
    }

    [Benchmark]
    public string Encrypt() => InstanceTokenEncryptor.Encrypt("gho_16C7e42F292c6912E7710c838347Ae178B4a", key);
}

/// <summary>The broker's real services on a temporary data folder: JWT issue per algorithm, and pending-login state in SQLite.</summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 8)]
public class BrokerServices
{
    private ServiceProvider services = null!;
    private string folder = "";
    private BrokerTokenIssuer issuer = null!;
    private PendingLoginStore logins = null!;
    private AllowlistInstance identityOnly = null!;
    private BrokerUser user = null!;

    [Params("ES256", "RS256")]
    public string SigningAlgorithm { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        folder = Directory.CreateTempSubdirectory("oauthbroker-micro-").FullName;
        var collection = new ServiceCollection();
        collection.AddLogging();
        collection.AddSingleton(TimeProvider.System);
        // What the host gives the broker: its settings (a key-encryption key for the key ring, as production requires) and environment.
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Broker:KeyEncryptionKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) }).Build();
        collection.AddSingleton<IConfiguration>(configuration);
        collection.AddSingleton<IHostEnvironment>(new HostingEnvironment { EnvironmentName = Environments.Production, ApplicationName = "MicroBench", ContentRootPath = folder });
        collection.AddSingleton(Options.Create(new BrokerOptions { PublicUrl = "https://broker.example.com", DataPath = folder, SigningAlgorithm = SigningAlgorithm }));
        collection.AddStorage().AddTokens();
        collection.AddBrokerMetrics();
        collection.AddLogin();
        collection.AddSingleton(AllowlistDefaults.From(configuration));
        collection.AddSingleton<AllowlistProvider>();
        services = collection.BuildServiceProvider();
        services.GetRequiredService<DatabaseMigrator>().MigrateAsync(default).GetAwaiter().GetResult();
        services.GetRequiredService<SigningKeyStore>().LoadAsync(default).GetAwaiter().GetResult();
        issuer = services.GetRequiredService<BrokerTokenIssuer>();
        logins = services.GetRequiredService<PendingLoginStore>();
        RedirectUri.TryParse("https://instance.example.com/cb", false, out var uri, out _);
        identityOnly = new AllowlistInstance("bench", [uri!], FrozenSet<string>.Empty, null);
        user = new BrokerUser(1, 42, "octocat", "The Octocat", "octocat@example.com", "https://avatars.example.com/u/42", 0, 0);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        services.Dispose();
        Directory.Delete(folder, recursive: true);
    }

    /// <summary>Signing only: an identity-only instance, so no JWE is made.</summary>
    [Benchmark]
    public string IssueJwt() => issuer.Issue(identityOnly, user, new GitHubToken("gho_x", "bearer", "read:user", null), "form_post");

    /// <summary>A pending login created and consumed, as /auth/github and its callback do.</summary>
    [Benchmark]
    public async Task<PendingLogin?> StateCreateAndConsume()
    {
        var started = await logins.CreateAsync("bench", "https://instance.example.com/cb", "s", "read:user", InstanceResponse.Query, null, default);
        var (login, _, _) = await logins.TryConsumeAsync(started.State, started.BrowserSecret, default);
        return login;
    }
}
