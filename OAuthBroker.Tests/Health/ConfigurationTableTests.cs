using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using OAuthBroker.Broker;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Health;

/// <summary>
/// docs/configuration.md's table against the code: every default it gives is the default of the options class that
/// binds its section, or one of the build's own (<see cref="BuiltInDefaults"/>), so that a build with no settings file
/// beside it behaves as the table says, and the table cannot drift from the code.
/// </summary>
public sealed partial class ConfigurationTableTests
{
    [Fact]
    public void Every_default_in_the_configuration_table_is_the_codes_own()
    {
        var sections = typeof(BrokerOptions).Assembly.GetTypes()
            .Where(type => type is { IsClass: true, IsAbstract: false } && type.GetField("Section", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true })
            .Where(type => type.GetConstructor(Type.EmptyTypes) is not null)
            .ToDictionary(type => (string)type.GetField("Section")!.GetRawConstantValue()!, StringComparer.Ordinal);
        var checkedKeys = new List<string>();
        var mismatches = new List<string>();

        foreach (Match row in TableRow().Matches(Readme.TextOf("docs/configuration.md")))
        {
            var keys = Backticked().Matches(row.Groups[1].Value).Select(match => match.Groups[1].Value).ToList();
            var defaultsCell = row.Groups[2].Value.Trim();
            if (!OnlyBackticked().IsMatch(defaultsCell))
            {
                continue; // "(required)", "(none)", "as `GitHub:`", or a sentence: not a single value.
            }

            var defaults = Backticked().Matches(defaultsCell).Select(match => match.Groups[1].Value).ToList();
            if (defaults.Count != keys.Count)
            {
                continue;
            }

            foreach (var (key, documented) in keys.Zip(defaults))
            {
                string? actual;
                if (BuiltInDefaults.Settings.TryGetValue(key, out var builtIn))
                {
                    actual = builtIn;
                }
                else if (key.Split(':') is [var section, var name] && sections.TryGetValue(section, out var type) && type.GetProperty(name) is { } property)
                {
                    actual = Text(property.GetValue(Activator.CreateInstance(type)));
                }
                else
                {
                    continue; // The framework's own (Logging:Console:FormatterName), or read outside an options class.
                }

                checkedKeys.Add(key);
                if (!string.Equals(actual, documented, StringComparison.OrdinalIgnoreCase))
                {
                    mismatches.Add($"{key}: the table says {documented}, the code has {actual}");
                }
            }
        }

        mismatches.Should().BeEmpty();
        checkedKeys.Should().HaveCountGreaterThan(25, "the table's defaults are read: " + string.Join(", ", checkedKeys));
        checkedKeys.Should().Contain(["Urls", "Broker:TokenLifetime", "GitHub:Timeout", "RateLimits:PendingLogins", "Webhooks:RetryFor", "Logging:LogLevel:Default"]);
    }

    private static string? Text(object? value) => value switch
    {
        TimeSpan span => span.ToString("c", CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        null => null,
        _ => value.ToString(),
    };

    [GeneratedRegex(@"^\| (`[^|]+) \| ([^|]+) \|", RegexOptions.Multiline)]
    private static partial Regex TableRow();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Backticked();

    [GeneratedRegex(@"^`[^`]+`(, `[^`]+`)*$")]
    private static partial Regex OnlyBackticked();
}
