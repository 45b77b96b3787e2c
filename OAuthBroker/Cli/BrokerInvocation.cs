using System.Reflection;

namespace OAuthBroker.Cli;

/// <summary>What the process was asked to do, read from its arguments before anything starts.</summary>
public enum InvocationKind
{
    Serve,
    Command,
    Help,
    Version,
    Unknown,
}

/// <param name="Kind">Serve, run an admin command, print the help or the version, or refuse.</param>
/// <param name="Demo">Serve in demo mode.</param>
/// <param name="HostArguments">For Serve: the arguments the host reads as configuration (<c>--urls</c>, <c>--Section:Key=value</c>).</param>
/// <param name="Offending">For Unknown: the argument that is neither a command nor an option of the service.</param>
public sealed record BrokerInvocation(InvocationKind Kind, bool Demo, string[] HostArguments, string? Offending)
{
    public const string DemoSwitch = "--demo";

    private static readonly string[] Commands = ["allowlist", "keys", "health"];
    private static readonly string[] HelpWords = ["--help", "-h", "help", "-?"];

    // What the service takes as --KEY[=VALUE]: the host's own switches, the sections the broker and the framework read
    // (a whole section, "--Broker=", as the test host passes it, or one key below it, "--Broker:PublicUrl=…"), and
    // the few top-level settings. A key outside these is a typo the configuration would silently ignore.
    private static readonly string[] KnownKeys =
    [
        "urls", "environment", "contentRoot", "applicationName", "AllowedHosts", "http_ports", "https_ports",
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME",
        "Admin", "Audit", "Broker", "Demo", "GitHub", "GitHubApp", "RateLimits", "Telemetry", "Webhooks",
        "ConnectionStrings", "Logging", "Kestrel", "hostBuilder",
    ];

    /// <summary>
    /// Reads the arguments strictly: a mistyped switch (<c>--dmeo</c>) must not start a server that silently ignores it,
    /// since the configuration parser would take it as a key nobody reads.
    /// </summary>
    public static BrokerInvocation Parse(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && HelpWords.Contains(args[0], StringComparer.Ordinal))
        {
            return new(InvocationKind.Help, false, [], null);
        }

        if (args.Length > 0 && args[0] == "--version")
        {
            return new(InvocationKind.Version, false, [], null);
        }

        if (args.Length > 0 && Commands.Contains(args[0], StringComparer.Ordinal))
        {
            return new(InvocationKind.Command, false, [], null);
        }

        var demo = false;
        var host = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var argument = args[i];
            if (argument == DemoSwitch)
            {
                demo = true;
                continue;
            }

            if (HelpWords.Contains(argument, StringComparer.Ordinal) || argument == "--version" || !argument.StartsWith("--", StringComparison.Ordinal))
            {
                return new(InvocationKind.Unknown, false, [], argument);
            }

            var equals = argument.IndexOf('=', StringComparison.Ordinal);
            var key = equals < 0 ? argument[2..] : argument[2..equals];
            var section = key.Split(':')[0];
            if (!KnownKeys.Contains(section, StringComparer.OrdinalIgnoreCase))
            {
                return new(InvocationKind.Unknown, false, [], argument);
            }

            host.Add(argument);
            if (equals < 0)
            {
                if (i + 1 >= args.Length)
                {
                    return new(InvocationKind.Unknown, false, [], argument);
                }

                host.Add(args[++i]);
            }
        }

        return new(InvocationKind.Serve, demo, [.. host], null);
    }

    /// <summary>"0.9.0 (commit 1a2b3c4)": the version and the commit the build was made from, when the build knew it.</summary>
    public static string Version
    {
        get
        {
            var informational = typeof(BrokerInvocation).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
            var plus = informational.IndexOf('+', StringComparison.Ordinal);
            return plus < 0
                ? $"{informational} (commit unknown)"
                : $"{informational[..plus]} (commit {informational[(plus + 1)..][..Math.Min(12, informational.Length - plus - 1)]})";
        }
    }

    public const string Usage = """
        OAuthBroker: a GitHub OAuth broker for self-hosted applications.

        Usage:
          OAuthBroker [--demo] [--urls URL] [--Section:Key=VALUE ...]   run the service
          OAuthBroker COMMAND [ARGUMENTS]                               run an admin command

        Ways to run:
          (no command)        the service, configured by appsettings.json, environment variables
                              (Section__Key) and --Section:Key=VALUE arguments; see docs/configuration.md
          --demo              the whole flow on this machine, with a stand-in GitHub and a demo instance
                              (loopback only, never in the Production environment)

        Commands:
          allowlist ...       list, show, add, edit, check, validate, import and export allowed instances
          keys ...            list and rotate the broker's signing keys
          health              ask the running broker whether it is ready (exit 0 if it is, 1 if not)
          help, --help, -h    print this help
          --version           print the version and the commit it was built from

        'OAuthBroker COMMAND --help' lists a command's own arguments.
        """;
}
