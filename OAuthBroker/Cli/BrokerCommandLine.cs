using System.CommandLine;
using OAuthBroker.Allowlist;
using OAuthBroker.Audit;
using OAuthBroker.Broker;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;

namespace OAuthBroker.Cli;

/// <summary>
/// The admin commands of the same executable (<c>dotnet OAuthBroker.dll allowlist …</c>, <c>… keys …</c>). They read
/// the same configuration as the service (appsettings.json, environment variables) and change the same files.
/// </summary>
public static class BrokerCommandLine
{
    /// <summary>Prints the help or the version (exit 0), refuses an unknown argument (exit 2), or runs an admin command.</summary>
    public static async Task<int> RunAsync(BrokerInvocation invocation, string[] args, IDictionary<string, string?>? settings = null, TextWriter? output = null, TextWriter? error = null)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        output ??= Console.Out;
        error ??= Console.Error;
        switch (invocation.Kind)
        {
            case InvocationKind.Help:
                await output.WriteLineAsync(BrokerInvocation.Usage);
                return 0;
            case InvocationKind.Version:
                await output.WriteLineAsync("OAuthBroker " + BrokerInvocation.Version);
                return 0;
            case InvocationKind.Unknown:
                await error.WriteLineAsync($"OAuthBroker: '{invocation.Offending}' is neither a command nor an option of the service.");
                await error.WriteLineAsync(BrokerInvocation.Usage);
                return 2;
            case InvocationKind.Serve:
                throw new ArgumentException("The service is not a command.", nameof(invocation));
            default:
                return await RunCommandAsync(args, settings, output, error);
        }
    }

    public static Task<int> RunAsync(string[] args, IDictionary<string, string?>? settings = null, TextWriter? output = null, TextWriter? error = null) =>
        RunAsync(BrokerInvocation.Parse(args), args, settings, output, error);

    private static async Task<int> RunCommandAsync(string[] args, IDictionary<string, string?>? settings, TextWriter output, TextWriter error)
    {
        WebApplicationBuilder? builder = null;
        try
        {
            // The command's own arguments are not configuration: only files and environment variables configure it.
            builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
            builder.Configuration.AddBuiltInDefaults();
            if (settings is not null)
            {
                builder.Configuration.AddInMemoryCollection(settings);
            }

            builder.Logging.ClearProviders();
            builder.Services.AddBrokerOptions(requirePublicUrl: false).AddStorage().AddAllowlist().AddTokens().AddAudit();
            await using var app = builder.Build();

            var root = new RootCommand("OAuthBroker admin commands. Without a command, the broker runs as a service.")
            {
                AllowlistCommands.Create(app.Services, output, error),
                KeyCommands.Create(app.Services, output),
                Health.HealthCommand.Create(builder.Configuration, output),
            };
            return await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (AllowlistException exception)
        {
            await error.WriteLineAsync(exception.Message);
            return 1;
        }
        catch (Exception exception) when (StartupFailureReporter.IsReported(exception))
        {
            return StartupFailureReporter.Report(exception, error, StartupFailureReporter.ShowsStackTrace(builder?.Configuration), $"OAuthBroker {args[0]} failed");
        }
    }
}
