using System.Diagnostics;
using System.Text;

namespace OAuthBroker.Tests.Support;

/// <summary>A way to run the broker as a user does: the README's <c>dotnet run</c>, the JIT build's dll, or the native executable.</summary>
public sealed record BrokerCommand(string Name, string FileName, IReadOnlyList<string> Arguments)
{
    /// <summary><c>dotnet run --project OAuthBroker -- ARGS</c> from the repository root, as the README writes it.</summary>
    public static BrokerCommand DotnetRun(params string[] args) => new("dotnet run", "dotnet", ["run", "--project", "OAuthBroker", "--", .. args]);

    /// <summary><c>dotnet OAuthBroker.dll ARGS</c>: the JIT build, with the runtimeconfig the SDK writes for it.</summary>
    public static BrokerCommand Dll(params string[] args) => new("dotnet OAuthBroker.dll", "dotnet", [Path.Combine(AppContext.BaseDirectory, "OAuthBroker.dll"), .. args]);

    /// <summary>The native executable scripts/test.sh publishes (what the Docker image runs).</summary>
    public static BrokerCommand Native(params string[] args) => new("native", NativeBroker.ExecutablePath, args);

    public static BrokerCommand Named(string build, params string[] args) => build switch
    {
        "dll" => Dll(args),
        "native" => Native(args),
        _ => throw new ArgumentOutOfRangeException(nameof(build), build, "dll or native"),
    };

    public override string ToString() => Name;
}

/// <summary>
/// The broker in a process of its own, started from the repository root with the environment a user's shell gives it
/// (the test runner's own variables taken out), output captured, killed with its children when disposed.
/// </summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();
    private readonly StringBuilder error = new();
    private int disposed;

    private BrokerProcess(Process process)
    {
        this.process = process;
        process.OutputDataReceived += (_, line) => Append(output, line.Data);
        process.ErrorDataReceived += (_, line) => Append(error, line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Output => Read(output);

    public string Error => Read(error);

    public int? ExitCode => process.HasExited ? process.ExitCode : null;

    /// <summary>The process id (the broker's own: <c>dotnet OAuthBroker.dll</c> runs in the dotnet process).</summary>
    public int Id => process.Id;

    public static BrokerProcess Start(BrokerCommand command, IDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        if (command.FileName == NativeBroker.ExecutablePath && !File.Exists(command.FileName))
        {
            throw new InvalidOperationException(
                "Publish the native broker first: dotnet publish OAuthBroker/OAuthBroker.csproj -c Release -r linux-x64 -o artifacts/native (the test command in the README does).");
        }

        var start = new ProcessStartInfo(command.FileName)
        {
            WorkingDirectory = workingDirectory ?? NodeProcess.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in command.Arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // What the test runner sets for itself is not what a user's shell has: an environment name would hide what
        // launchSettings.json does for `dotnet run`, and MSBuild's variables would steer its build.
        foreach (var key in start.Environment.Keys.Where(IsTestRunnerVariable).ToList())
        {
            start.Environment.Remove(key);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[key] = value;
        }

        return new BrokerProcess(Process.Start(start)!);
    }

    /// <summary>Runs the command to its end (a start-up failure, an admin command).</summary>
    public static async Task<CliResult> RunToExitAsync(BrokerCommand command, IDictionary<string, string?>? environment = null, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        await using var broker = Start(command, environment, workingDirectory);
        await broker.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(60));
        return new CliResult(broker.ExitCode!.Value, broker.Output, broker.Error);
    }

    /// <summary>Starts the command and waits until <c>/readyz</c> at <paramref name="baseUrl"/> answers 200.</summary>
    public static async Task<BrokerProcess> StartReadyAsync(BrokerCommand command, string baseUrl, IDictionary<string, string?>? environment = null, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var broker = Start(command, environment, workingDirectory);
        try
        {
            await Readiness.WaitAsync(baseUrl, timeout ?? TimeSpan.FromSeconds(30),
                () => broker.ExitCode is { } exit ? $"{command} exited with {exit}:\n{broker.Output}\n{broker.Error}" : null);
            return broker;
        }
        catch
        {
            await broker.DisposeAsync();
            throw;
        }
    }

    /// <summary>SIGTERM, as a service manager stops it: the host shuts down in order.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    /// <summary>SIGKILL: no shutdown, no flush.</summary>
    public void KillHard() => process.Kill(entireProcessTree: true);

    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The broker did not exit within {timeout}:\n{Output}\n{Error}");
        }

        // The asynchronous readers deliver the last lines after the exit: wait for the end of both streams.
        process.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
    }

    private static bool IsTestRunnerVariable(string key) =>
        key.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || key == "DOTNET_ENVIRONMENT"
        || key.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || key.StartsWith("VSTEST", StringComparison.Ordinal);

    private static void Append(StringBuilder buffer, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (buffer)
        {
            buffer.AppendLine(line);
        }
    }

    private static string Read(StringBuilder buffer)
    {
        lock (buffer)
        {
            return buffer.ToString();
        }
    }
}

public static class ToolErrorAssertions
{
    /// <summary>
    /// How a tool reports what its user must fix: exit code 1, a few lines on stderr that mention each of
    /// <paramref name="mentions"/>, and no stack trace or crash report anywhere.
    /// </summary>
    public static void ShouldBeAToolError(this CliResult result, params string[] mentions)
    {
        ArgumentNullException.ThrowIfNull(result);
        var because = $"stdout:\n{result.Output}\nstderr:\n{result.Error}";
        result.ExitCode.Should().Be(1, because);
        foreach (var mention in mentions)
        {
            result.Error.Should().Contain(mention, because);
        }

        result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCountLessThanOrEqualTo(6, because);
        (result.Output + result.Error).Should().NotContainAny(["Unhandled exception", "   at ", "--- End of", "fail:", "crit:"], because);
    }
}

public static class BrokerEnvironment
{
    /// <summary>
    /// The environment of a broker in a process of its own that uses <paramref name="gitHub"/>: a free loopback port
    /// (its URL is <c>Urls</c>), and the data folder and allowlist (written here) under <paramref name="folder"/>.
    /// </summary>
    public static Dictionary<string, string?> For(FakeGitHub gitHub, string folder, string allowlistJson)
    {
        ArgumentNullException.ThrowIfNull(gitHub);
        var allowlist = Path.Combine(folder, "allowed-redirects.json");
        File.WriteAllText(allowlist, allowlistJson);
        var environment = FakeGitHub.AsEnvironment(gitHub.BrokerSettings());
        environment["Urls"] = $"http://127.0.0.1:{LoopbackPort.Free()}";
        environment["Broker__PublicUrl"] = environment["Urls"];
        environment["Broker__DataPath"] = Path.Combine(folder, "data");
        environment["Broker__AllowlistPath"] = allowlist;
        return environment;
    }
}
