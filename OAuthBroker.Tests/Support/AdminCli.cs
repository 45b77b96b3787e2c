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
        BrokerProcess.RunToExitAsync(BrokerCommand.Dll(args), Environment(broker));

    /// <summary>The native executable the Dockerfile ships (<see cref="NativeBroker.ExecutablePath"/>), in its own process.</summary>
    public static Task<CliResult> RunNativeAsync(BrokerFactory broker, params string[] args) =>
        BrokerProcess.RunToExitAsync(BrokerCommand.Native(args), Environment(broker));

    private static Dictionary<string, string?> Environment(BrokerFactory broker)
    {
        var environment = FakeGitHub.AsEnvironment(Settings(broker));
        environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        return environment;
    }

    private static Dictionary<string, string?> Settings(BrokerFactory broker)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = broker.PublicUrl,
            ["Broker:AllowlistPath"] = broker.AllowlistPath,
            ["Broker:DataPath"] = broker.DataPath,
            ["Broker:KeyEncryptionKey"] = broker.Settings["Broker:KeyEncryptionKey"],
        };
        foreach (var database in new[] { "Broker:Database", "ConnectionStrings:Broker" }.Where(broker.Settings.ContainsKey))
        {
            settings[database] = broker.Settings[database];
        }

        return settings;
    }
}
