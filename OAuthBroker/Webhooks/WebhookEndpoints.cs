using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using OAuthBroker.Audit;
using OAuthBroker.GitHub;
using OAuthBroker.Storage;
using OAuthBroker.Users;

namespace OAuthBroker.Webhooks;

/// <summary>
/// <c>POST /webhooks/github</c>, the GitHub App's webhook URL: signature first (HMAC-SHA256 of the raw body under
/// <c>GitHubApp:WebhookSecret</c>, in constant time), then the delivery id (a repeat is acknowledged, not processed),
/// then the event's routing to the instances it belongs to, committed with the delivery id before GitHub gets its 2xx.
/// </summary>
public static partial class WebhookEndpoints
{
    public const string Path = "/webhooks/github";
    private const int MaxHeaderValueLength = 64;

    public static IServiceCollection AddWebhooks(this IServiceCollection services)
    {
        services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<WebhookOptions>, WebhookOptionsValidator>();
        services.AddStore<IWebhookStore, SqliteWebhookStore, PostgresWebhookStore>();
        services.AddSingleton<WebhookRouter>();
        services.AddSingleton<WebhookRelay>();
        services.AddHostedService(provider => provider.GetRequiredService<WebhookRelay>());
        services.AddSingleton<IPurgeable>(provider => provider.GetRequiredService<WebhookRelay>());
        services.AddHttpClient(WebhookRelay.HttpClientName, client => client.DefaultRequestHeaders.UserAgent.ParseAdd("OAuthBroker-Webhooks/1.0"))
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
            .RemoveAllLoggers();
        return services;
    }

    public static IEndpointRouteBuilder MapWebhooks(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost(Path, ReceiveAsync).WithTags("Webhooks").DisableAntiforgery();
        return endpoints;
    }

    public static async Task<IResult> ReceiveAsync(
        HttpContext context, IOptions<GitHubAppOptions> app, IOptions<WebhookOptions> options, WebhookRouter router, IWebhookStore store,
        AuditLog audit, TimeProvider time, ILogger<WebhookRouter> logger, CancellationToken cancellationToken)
    {
        if (app.Value.WebhookSecret.Length == 0)
        {
            return TypedResults.Problem("This broker has no GitHubApp:WebhookSecret, so it takes no webhooks.", statusCode: StatusCodes.Status404NotFound, title: "No webhooks");
        }

        var refuse = async (int status, string title, string reason) =>
        {
            Log.Refused(logger, reason);
            // Counted per minute, source and reason: a flood of forged deliveries adds a bounded number of rows.
            await audit.RecordRefusalAsync(null, "webhook: " + reason, context.Connection.RemoteIpAddress, cancellationToken);
            return (IResult)TypedResults.Problem(reason, statusCode: status, title: title);
        };

        var max = options.Value.MaxBodyBytes;
        var body = await ReadBoundedAsync(context, max, cancellationToken);
        if (body is null)
        {
            return await refuse(StatusCodes.Status413PayloadTooLarge, "Delivery too large", $"the body is larger than {max} bytes");
        }

        var signature = context.Request.Headers[WebhookSignature.Header];
        if (signature.Count == 0)
        {
            return await refuse(StatusCodes.Status401Unauthorized, "Unsigned delivery", $"the delivery has no {WebhookSignature.Header}");
        }

        if (signature.Count > 1 || !WebhookSignature.IsValid(body, signature.ToString(), Encoding.UTF8.GetBytes(app.Value.WebhookSecret)))
        {
            return await refuse(StatusCodes.Status401Unauthorized, "Wrong signature", $"{WebhookSignature.Header} is not the body's HMAC-SHA256 under the webhook secret");
        }

        // Signed by GitHub from here on; still bounded, since a leaked secret should not buy more than a bad delivery.
        var deliveryId = context.Request.Headers["X-GitHub-Delivery"].ToString();
        var eventName = context.Request.Headers["X-GitHub-Event"].ToString();
        if (!IsToken(deliveryId, allowUpper: true) || !IsToken(eventName, allowUpper: false))
        {
            return await refuse(StatusCodes.Status400BadRequest, "Malformed delivery", "X-GitHub-Delivery or X-GitHub-Event is missing or malformed");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException)
        {
            return await refuse(StatusCodes.Status400BadRequest, "Malformed delivery", "the body is not JSON");
        }

        using (document)
        {
            var route = await router.RouteAsync(eventName, document.RootElement, cancellationToken);
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var accepted = await store.AcceptAsync(new WebhookDelivery(deliveryId, eventName, Encoding.UTF8.GetString(body), now), route.Targets, route.Effects, cancellationToken);
            if (!accepted)
            {
                Log.Duplicate(logger, deliveryId, eventName);
                return TypedResults.Ok(new WebhookAnswer("duplicate", 0));
            }

            Log.Accepted(logger, deliveryId, eventName, route.Action, route.Targets.Count);
            if (route.Action != "ignored")
            {
                await audit.RecordWebhookAsync(route.Targets.Count == 1 ? route.Targets[0].InstanceId : null, route.GitHubLogin, route.Action,
                    $"delivery {deliveryId}, relayed to {route.Targets.Count} instance(s){(route.Reason is null ? "" : "; " + route.Reason)}", cancellationToken);
            }

            return TypedResults.Ok(new WebhookAnswer(route.Action == "ignored" ? "ignored" : "accepted", route.Targets.Count));
        }
    }

    /// <summary>The body, or null when it is larger than <paramref name="max"/> bytes (refused before reading when its length says so).</summary>
    private static async Task<byte[]?> ReadBoundedAsync(HttpContext context, int max, CancellationToken cancellationToken)
    {
        if (context.Request.ContentLength > max)
        {
            return null;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = max;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.Length + read > max)
                {
                    return null;
                }

                await buffer.WriteAsync(chunk.AsMemory(0, read), cancellationToken);
            }
        }
        catch (BadHttpRequestException)
        {
            return null;
        }

        return buffer.ToArray();
    }

    // GitHub's delivery ids are GUIDs and its event names snake_case words.
    private static bool IsToken(string value, bool allowUpper) =>
        value.Length is > 0 and <= MaxHeaderValueLength
        && value.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '-' || (allowUpper && char.IsAsciiLetterUpper(c)));

    private static partial class Log
    {
        [LoggerMessage(EventId = 12001, Level = LogLevel.Warning, Message = "Refused a webhook delivery: {Reason}")]
        public static partial void Refused(ILogger logger, string reason);

        [LoggerMessage(EventId = 12002, Level = LogLevel.Information, Message = "Webhook delivery {DeliveryId} ({Event}) seen before: acknowledged, not processed again")]
        public static partial void Duplicate(ILogger logger, string deliveryId, string @event);

        [LoggerMessage(EventId = 12003, Level = LogLevel.Information, Message = "Webhook delivery {DeliveryId} ({Event}): {Action}, relayed to {Count} instance(s)")]
        public static partial void Accepted(ILogger logger, string deliveryId, string @event, string action, int count);
    }
}

/// <summary>What GitHub is told (it shows it in the app's delivery log): accepted, duplicate or ignored, and to how many instances.</summary>
public sealed record WebhookAnswer(
    [property: System.Text.Json.Serialization.JsonPropertyName("status")] string Status,
    [property: System.Text.Json.Serialization.JsonPropertyName("relayed")] int Relayed);
