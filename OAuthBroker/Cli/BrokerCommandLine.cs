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
    private static readonly string[] Commands = ["allowlist", "keys", "health"];

    public static bool IsCommand(string[] args) => args.Length > 0 && Commands.Contains(args[0], StringComparer.Ordinal);

    public static async Task<int> RunAsync(string[] args, IDictionary<string, string?>? settings = null, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;

        WebApplicationBuilder? builder = null;
        try
        {
            // The command's own arguments are not configuration: only files and environment variables configure it.
            builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
            if (settings is not null)
            {
                builder.Configuration.AddInMemoryCollection(settings);
            }

            builder.Logging.ClearProviders();
            builder.Services.AddBrokerOptions().AddStorage().AddAllowlist().AddTokens().AddAudit();
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
