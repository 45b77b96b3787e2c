namespace OAuthBroker.Tests.Support;

/// <summary>
/// The broker as it ships: the native (AOT-compiled) executable that scripts/test.sh publishes to artifacts/native,
/// run as its own process on 127.0.0.1 against the fake GitHub. Killed, and its logs and data scanned for secrets,
/// when disposed.
/// </summary>
public sealed class NativeBroker : IAsyncDisposable
{
    private readonly BrokerProcess process;
    private readonly FakeGitHub gitHub;
    private readonly string dataPath;

    private NativeBroker(BrokerProcess process, FakeGitHub gitHub, string publicUrl, string dataPath)
    {
        this.process = process;
        this.gitHub = gitHub;
        this.dataPath = dataPath;
        PublicUrl = publicUrl;
    }

    public string PublicUrl { get; }

    public static string ExecutablePath => Path.Combine(NodeProcess.RepositoryRoot, "artifacts", "native", "OAuthBroker");

    public string Output => process.Output + process.Error;

    /// <summary>
    /// Starts the executable in <paramref name="folder"/>, on <paramref name="port"/> (a free one when not given: a
    /// restart passes its old one). <paramref name="build"/> <c>dll</c> runs the JIT build the same way instead.
    /// </summary>
    public static async Task<NativeBroker> StartAsync(FakeGitHub gitHub, string folder, string allowlistJson, IDictionary<string, string?>? overrides = null, int? port = null, string build = "native")
    {
        port ??= LoopbackPort.Free();
        var publicUrl = $"http://127.0.0.1:{port}";
        File.WriteAllText(Path.Combine(folder, "allowed-redirects.json"), allowlistJson);
        var settings = gitHub.BrokerSettings();
        settings["Urls"] = publicUrl;
        settings["Broker:PublicUrl"] = publicUrl;
        settings["Broker:AllowlistPath"] = Path.Combine(folder, "allowed-redirects.json");
        settings["Broker:DataPath"] = Path.Combine(folder, "data");
        if (TestDatabase.IsPostgres)
        {
            settings["Broker:Database"] = "postgres";
            settings["ConnectionStrings:Broker"] = TestDatabase.PostgresDatabaseFor(folder);
        }

        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var environment = FakeGitHub.AsEnvironment(settings);
        environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var process = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), publicUrl, environment, workingDirectory: folder);
        return new NativeBroker(process, gitHub, publicUrl, settings["Broker:DataPath"]!);
    }

    /// <summary>SIGKILL: no shutdown, no flush, connections cut mid-request.</summary>
    public ValueTask KillAsync() => process.DisposeAsync();

    public async ValueTask DisposeAsync()
    {
        await process.DisposeAsync();
        SecretScan.AssertAbsent(gitHub.Secrets, Output, dataPath);
    }
}
