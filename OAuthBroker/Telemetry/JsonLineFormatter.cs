using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace OAuthBroker.Telemetry;

/// <summary>
/// <c>Logging:Console:FormatterName=json</c>: one JSON object per line for log collectors, each with an ISO 8601 UTC
/// <c>Timestamp</c>, and the event's fields once. The framework's JSON formatter writes no time unless configured and
/// repeats the message inside <c>State</c>, beside the message template.
/// </summary>
public sealed class JsonLineFormatter(TimeProvider time) : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "oauthbroker-json";

    private const string OriginalFormat = "{OriginalFormat}";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null)
        {
            return;
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("Timestamp", time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            json.WriteNumber("EventId", logEntry.EventId.Id);
            if (logEntry.EventId.Name is { Length: > 0 } name)
            {
                json.WriteString("EventName", name);
            }

            json.WriteString("LogLevel", logEntry.LogLevel.ToString());
            json.WriteString("Category", logEntry.Category);
            json.WriteString("Message", message);
            if (logEntry.Exception is { } exception)
            {
                json.WriteString("Exception", exception.ToString());
            }

            if (logEntry.State is IReadOnlyList<KeyValuePair<string, object?>> fields && fields.Any(field => field.Key != OriginalFormat))
            {
                json.WriteStartObject("State");
                foreach (var (key, value) in fields.Where(field => field.Key != OriginalFormat))
                {
                    WriteValue(json, key, value);
                }

                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        textWriter.Write(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        textWriter.Write(Environment.NewLine);
    }

    private static void WriteValue(Utf8JsonWriter json, string key, object? value)
    {
        switch (value)
        {
            case null:
                json.WriteNull(key);
                break;
            case bool flag:
                json.WriteBoolean(key, flag);
                break;
            case int or long or short or byte or uint or ulong or ushort or sbyte or double or float or decimal:
                json.WritePropertyName(key);
                json.WriteRawValue(Convert.ToString(value, CultureInfo.InvariantCulture)!, skipInputValidation: false);
                break;
            default:
                json.WriteString(key, Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }
}

/// <summary>Sends the documented <c>json</c> formatter name to <see cref="JsonLineFormatter"/>.</summary>
public sealed class JsonLineFormatterSelection : IPostConfigureOptions<ConsoleLoggerOptions>
{
    public void PostConfigure(string? name, ConsoleLoggerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.Equals(options.FormatterName, ConsoleFormatterNames.Json, StringComparison.OrdinalIgnoreCase))
        {
            options.FormatterName = JsonLineFormatter.FormatterName;
        }
    }
}
