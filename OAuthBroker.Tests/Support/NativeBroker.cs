using System.Diagnostics;
using System.Text;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// The broker as it ships: the native (AOT-compiled) executable that scripts/test.sh publishes to artifacts/native,
/// run as its own process on 127.0.0.1 against the fake GitHub. Killed, and its logs and data scanned for secrets,
/// when disposed.
/// </summary>
public sealed class NativeBroker : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();
    private readonly FakeGitHub gitHub;
    private readonly string dataPath;

    private NativeBroker(Process process, FakeGitHub gitHub, string publicUrl, string dataPath)
    {
        this.process = process;
        this.gitHub = gitHub;
        this.dataPath = dataPath;
        PublicUrl = publicUrl;
        process.OutputDataReceived += (_, line) => { lock (output) { output.AppendLine(line.Data); } };
        process.ErrorDataReceived += (_, line) => { lock (output) { output.AppendLine(line.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string PublicUrl { get; }

    public static string ExecutablePath => Path.Combine(NodeProcess.RepositoryRoot, "artifacts", "native", "OAuthBroker");

    public string Output
    {
        get
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    public static async Task<NativeBroker> StartAsync(FakeGitHub gitHub, string folder, string allowlistJson, IDictionary<string, string?>? overrides = null)
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException(
                "Publish the native broker first: dotnet publish OAuthBroker/OAuthBroker.csproj -c Release -r linux-x64 -o artifacts/native (the test command in the README does).");
        }

        var port = LoopbackPort.Free();
        var publicUrl = $"http://127.0.0.1:{port}";
        File.WriteAllText(Path.Combine(folder, "allowed-redirects.json"), allowlistJson);
        var settings = gitHub.BrokerSettings();
        settings["Urls"] = publicUrl;
        settings["Broker:PublicUrl"] = publicUrl;
        settings["Broker:AllowlistPath"] = Path.Combine(folder, "allowed-redirects.json");
        settings["Broker:DataPath"] = Path.Combine(folder, "data");
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var start = new ProcessStartInfo(ExecutablePath) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in FakeGitHub.AsEnvironment(settings))
        {
            start.Environment[key] = value;
        }

        var broker = new NativeBroker(Process.Start(start)!, gitHub, publicUrl, settings["Broker:DataPath"]!);
        try
        {
            await Readiness.WaitAsync(publicUrl, TimeSpan.FromSeconds(30), () => broker.process.HasExited ? $"The native broker exited with {broker.process.ExitCode}: {broker.Output}" : null);
            return broker;
        }
        catch
        {
            await broker.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
        SecretScan.AssertAbsent(gitHub.Secrets, Output, dataPath);
    }
}
