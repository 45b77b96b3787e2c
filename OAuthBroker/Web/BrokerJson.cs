using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Jose;
using OAuthBroker.Admin;
using OAuthBroker.Audit;
using OAuthBroker.Health;
using OAuthBroker.Users;

namespace OAuthBroker.Web;

/// <summary>
/// Every JSON shape the broker writes, described at build time (System.Text.Json source generation): the native
/// executable has no reflection-based serializer. Web defaults, as minimal APIs use.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Dictionary<string, object>))]
[JsonSerializable(typeof(Dictionary<string, object>[]))]
[JsonSerializable(typeof(List<IDictionary<string, object>>))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(Readiness))]
[JsonSerializable(typeof(ReadinessStatus))]
[JsonSerializable(typeof(UserProfile))]
[JsonSerializable(typeof(InstanceList))]
[JsonSerializable(typeof(CheckResult))]
[JsonSerializable(typeof(CsrfToken))]
[JsonSerializable(typeof(AuditPage))]
[JsonSerializable(typeof(Admin.UserConnections))]
[JsonSerializable(typeof(Admin.EndedAccess))]
[JsonSerializable(typeof(Webhooks.WebhookAnswer))]
[JsonSerializable(typeof(Webhooks.WebhookList))]
internal sealed partial class BrokerJsonContext : JsonSerializerContext;

/// <summary>The JSON jose-jwt reads and writes (JOSE headers, JWKs): plain values, as its own mapper gives them.</summary>
[JsonSourceGenerationOptions(Converters = [typeof(PlainValueConverter)])]
[JsonSerializable(typeof(IDictionary<string, object>))]
[JsonSerializable(typeof(Dictionary<string, object>))]
internal sealed partial class JoseJsonContext : JsonSerializerContext;

/// <summary>jose-jwt's JSON hook, on the source-generated context instead of reflection.</summary>
public sealed class SourceGeneratedJoseMapper : IJsonMapper
{
    /// <summary>
    /// jose-jwt's process-wide settings, with this mapper. Not a settings object of our own: <c>JWE.Decrypt</c> parses
    /// the JWE's headers with <c>JWT.DefaultSettings</c> whatever settings it is given (jose-jwt 5.3.0), and the
    /// default mapper is reflection-based JSON, which the native executable does not have.
    /// </summary>
    public static readonly JwtSettings Settings = JWT.DefaultSettings.RegisterMapper(new SourceGeneratedJoseMapper());

    public string Serialize(object obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        return JsonSerializer.Serialize(obj, obj.GetType(), JoseJsonContext.Default);
    }

    public T Parse<T>(string json) => (T)JsonSerializer.Deserialize(json, typeof(T), JoseJsonContext.Default)!;
}

/// <summary>JSON values as plain .NET values (string, long, double, bool, null, lists and dictionaries), both ways.</summary>
internal sealed class PlainValueConverter : JsonConverter<object>
{
    public override object? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                return reader.GetString();
            case JsonTokenType.Number:
                return reader.TryGetInt64(out var whole) ? whole : reader.GetDouble();
            case JsonTokenType.True:
                return true;
            case JsonTokenType.False:
                return false;
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.StartArray:
                var list = new List<object?>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    list.Add(Read(ref reader, typeToConvert, options));
                }

                return list;
            case JsonTokenType.StartObject:
                var members = new Dictionary<string, object?>(StringComparer.Ordinal);
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    var name = reader.GetString()!;
                    reader.Read();
                    members[name] = Read(ref reader, typeToConvert, options);
                }

                return members;
            default:
                throw new JsonException($"Unexpected JSON token {reader.TokenType}.");
        }
    }

    public override void Write(Utf8JsonWriter writer, object value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case string text:
                writer.WriteStringValue(text);
                break;
            case bool flag:
                writer.WriteBooleanValue(flag);
                break;
            case int or long or short or byte or uint or ushort:
                writer.WriteNumberValue(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
                break;
            case double or float or decimal:
                writer.WriteNumberValue(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
                break;
            case IDictionary<string, object> dictionary:
                writer.WriteStartObject();
                foreach (var (name, member) in dictionary)
                {
                    writer.WritePropertyName(name);
                    Write(writer, member, options);
                }

                writer.WriteEndObject();
                break;
            case System.Collections.IEnumerable items:
                writer.WriteStartArray();
                foreach (var item in items)
                {
                    Write(writer, item, options);
                }

                writer.WriteEndArray();
                break;
            default:
                throw new JsonException($"Cannot write a {value.GetType().Name} as a JOSE value.");
        }
    }
}

public static class BrokerJsonSetup
{
    /// <summary>Minimal APIs serialize the broker's results with the source-generated context first.</summary>
    public static IServiceCollection AddBrokerJson(this IServiceCollection services) =>
        services.ConfigureHttpJsonOptions(options => options.SerializerOptions.TypeInfoResolverChain.Insert(0, BrokerJsonContext.Default));
}
