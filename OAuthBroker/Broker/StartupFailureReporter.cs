using System.Reflection;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;

namespace OAuthBroker.Broker;

/// <summary>
/// A reason the broker (or an admin command) cannot start that the operator must fix: a setting, a file, a folder. Its
/// message names the key or path and what to do; it is shown as it is, without a stack trace.
/// </summary>
public sealed class StartupException : Exception
{
    public StartupException()
    {
    }

    public StartupException(string message)
        : base(message)
    {
    }

    public StartupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Ends a failed start as a command-line tool does: a few lines on stderr that name what to fix, and exit code 1.
/// The stack trace is shown only when the log level is Debug; an operator fixing a setting has no use for it.
/// </summary>
public static class StartupFailureReporter
{
    public const int ExitCode = 1;

    /// <summary>The host's own "Hosting failed to start" entry, which repeats the failure with its stack trace.</summary>
    public const string HostLogCategory = "Microsoft.Extensions.Hosting.Internal.Host";

    /// <summary>
    /// Whether this program is the process, rather than hosted by another (a test's WebApplicationFactory runs the entry
    /// point and must see the exception itself).
    /// </summary>
    public static bool OwnsTheProcess => Assembly.GetEntryAssembly() == typeof(StartupFailureReporter).Assembly;

    /// <summary>
    /// Whether the exception is reported here. Not the host's own signal to stop (<see cref="HostAbortedException"/>,
    /// thrown when a test host builds the app), nor a cancellation (Ctrl+C during start-up).
    /// </summary>
    public static bool IsReported(Exception exception) => exception is not (HostAbortedException or OperationCanceledException);

    /// <summary>
    /// The failure is reported once, by <see cref="Report"/>: the console does not also get the host's own entry for
    /// it, which carries the stack trace (other log providers still get it; at Debug the console does too).
    /// </summary>
    public static WebApplicationBuilder ReportStartupFailuresOnce(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (!ShowsStackTrace(builder.Configuration))
        {
            builder.Logging.AddFilter<ConsoleLoggerProvider>(HostLogCategory, level => level >= LogLevel.Critical);
        }

        return builder;
    }

    /// <summary>Debug is on when the configuration or, before it could be read, the environment says so.</summary>
    public static bool ShowsStackTrace(IConfiguration? configuration)
    {
        var level = configuration?["Logging:LogLevel:Default"] ?? Environment.GetEnvironmentVariable("Logging__LogLevel__Default");
        return Enum.TryParse<LogLevel>(level, ignoreCase: true, out var parsed) && parsed <= LogLevel.Debug;
    }

    /// <param name="headline">What failed, as the first words of the report.</param>
    public static int Report(Exception exception, TextWriter error, bool showStackTrace, string headline = "OAuthBroker could not start")
    {
        ArgumentNullException.ThrowIfNull(error);
        var lines = Describe(exception).ToList();
        error.WriteLine(lines.Count == 1 ? $"{headline}: {lines[0]}" : $"{headline}:");
        if (lines.Count > 1)
        {
            foreach (var line in lines)
            {
                error.WriteLine($"  - {line}");
            }
        }

        if (showStackTrace)
        {
            error.WriteLine(exception.ToString());
        }
        else if (!IsExpected(exception))
        {
            error.WriteLine($"({exception.GetType().Name}; set Logging__LogLevel__Default=Debug for the stack trace.)");
        }

        return ExitCode;
    }

    /// <summary>What to tell the operator, one line per problem.</summary>
    public static IEnumerable<string> Describe(Exception exception) => Unwrap(exception) switch
    {
        OptionsValidationException options => options.Failures,
        IOException { InnerException: AddressInUseException } bind =>
            [$"{bind.Message.TrimEnd('.')}: another process listens there. Stop it, or listen elsewhere with Urls (--urls, environment variable Urls)."],
        InvalidDataException { InnerException: { } cause } file when file.Message.StartsWith("Failed to load configuration", StringComparison.Ordinal) =>
            [$"{file.Message} {cause.Message}"],
        var other => [other.Message],
    };

    private static bool IsExpected(Exception exception) => Unwrap(exception) switch
    {
        StartupException or OptionsValidationException or AllowlistException or InvalidDataException => true,
        IOException { InnerException: AddressInUseException } => true,
        InvalidOperationException binding => binding.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal),
        _ => false,
    };

    private static Exception Unwrap(Exception exception) =>
        exception is AggregateException { InnerExceptions.Count: 1 } aggregate ? Unwrap(aggregate.InnerExceptions[0]) : exception;
}
