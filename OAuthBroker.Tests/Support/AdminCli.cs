using System.Diagnostics;
using OAuthBroker.Cli;

namespace OAuthBroker.Tests.Support;

public sealed record CliResult(int ExitCode, string Output, string Error);

/// <summary>Runs the broker's admin commands against a test's files, in-process or as the real executable.</summary>
public static class AdminCli
{
    public static async Task<CliResult> RunAsync(BrokerFactory broker, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await BrokerCommandLine.RunAsync(args, Settings(broker), output, error);
        return new CliResult(exit, output.ToString(), error.ToString());
    }

    /// <summary><c>dotnet OAuthBroker.dll …</c> in its own process, configured by environment variables as an admin would.</summary>
    public static Task<CliResult> RunProcessAsync(BrokerFactory broker, params string[] args) =>
        RunAsync(new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "OAuthBroker.dll") } }, broker, args);

    /// <summary>The native executable the Dockerfile ships (<see cref="NativeBroker.ExecutablePath"/>), in its own process.</summary>
    public static Task<CliResult> RunNativeAsync(BrokerFactory broker, params string[] args) =>
        RunAsync(new ProcessStartInfo(NativeBroker.ExecutablePath), broker, args);

    private static async Task<CliResult> RunAsync(ProcessStartInfo start, BrokerFactory broker, string[] args)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in Settings(broker))
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return new CliResult(process.ExitCode, await output, await error);
    }

    private static Dictionary<string, string?> Settings(BrokerFactory broker) => new()
    {
        ["Broker:PublicUrl"] = broker.PublicUrl,
        ["Broker:AllowlistPath"] = broker.AllowlistPath,
        ["Broker:DataPath"] = broker.DataPath,
    };
}
