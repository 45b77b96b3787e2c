using System.Buffers;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;

namespace OAuthBroker.Webhooks;

/// <summary>
/// Delivers the outbox: at least once, in order within each installation or user, retried with exponential backoff for
/// <see cref="WebhookOptions.RetryFor"/> and then dead-lettered. Each instance has its own delivery task, so a slow or
/// dead instance never delays another; a claim in the database keeps two replicas from sending the same event at once.
/// Each event is signed into a JWS at each attempt (its <c>iat</c> is the attempt's), with the broker's current key.
/// </summary>
public sealed partial class WebhookRelay(
    IWebhookStore store, AllowlistProvider allowlist, SigningKeyStore keys, IHttpClientFactory httpClients, IOptions<WebhookOptions> options, IOptions<BrokerOptions> broker,
    TimeProvider time, ILogger<WebhookRelay> logger)
    : BrokerBackgroundService, IPurgeable
{
    public const string HttpClientName = "webhook-relay";

    /// <summary>The JWS's <c>typ</c>: a relayed event is never mistaken for a sign-in token.</summary>
    public const string TokenType = "github-event+jwt";

    /// <summary>How long a relayed event's JWS is valid (<c>exp</c>); instances should also refuse a <c>jti</c> seen before.</summary>
    public static readonly TimeSpan EventLifetime = TimeSpan.FromMinutes(10);

    private const int BatchSize = 200;
    private static readonly JsonWebTokenHandler Handler = new();
    private readonly Dictionary<string, Task> running = new(StringComparer.Ordinal);

    public string Name => "webhook_outbox";

    protected override async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PollInterval, time);
        try
        {
            do
            {
                try
                {
                    await StartDueAsync(stoppingToken);
                }
                catch (System.Data.Common.DbException exception)
                {
                    Log.OutboxUnavailable(logger, exception);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        finally
        {
            // Claims of unfinished deliveries run out on their own; another replica or the next start takes them over.
            await Task.WhenAll(running.Values).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task StartDueAsync(CancellationToken stoppingToken)
    {
        foreach (var finished in running.Where(pair => pair.Value.IsCompleted).Select(pair => pair.Key).ToList())
        {
            running.Remove(finished);
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var due = await store.FindDueAsync(now, BatchSize, stoppingToken);
        foreach (var group in due.GroupBy(message => message.InstanceId, StringComparer.Ordinal).Where(group => !running.ContainsKey(group.Key)))
        {
            var claimed = new List<WebhookMessage>();
            // Long enough for every claimed attempt to time out and be written down; after it, a replica that died
            // mid-delivery no longer holds the events back.
            var until = now + (long)(options.Value.DeliveryTimeout.TotalMilliseconds * (group.Count() + 1)) + 5_000;
            foreach (var message in group)
            {
                if (await store.ClaimAsync(message.Id, now, until, stoppingToken))
                {
                    claimed.Add(message);
                }
            }

            if (claimed.Count > 0)
            {
                running[group.Key] = Task.Run(() => DeliverAllAsync(claimed, stoppingToken), CancellationToken.None);
            }
        }
    }

    private async Task DeliverAllAsync(List<WebhookMessage> messages, CancellationToken stoppingToken)
    {
        foreach (var message in messages)
        {
            try
            {
                await DeliverAsync(message, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (System.Data.Common.DbException exception)
            {
                // The outcome could not be written: the claim runs out and the event goes again (at least once).
                Log.OutboxUnavailable(logger, exception);
            }
        }
    }

    private async Task DeliverAsync(WebhookMessage message, CancellationToken stoppingToken)
    {
        var failure = await SendAsync(message, stoppingToken);
        var now = time.GetUtcNow();
        if (failure is null)
        {
            await store.MarkDeliveredAsync(message.Id, now.ToUnixTimeMilliseconds(), CancellationToken.None);
            Log.Delivered(logger, message.Id, message.Event, message.InstanceId);
            return;
        }

        var attempts = message.Attempts + 1;
        var settings = options.Value;
        var dead = failure.Final || now.ToUnixTimeMilliseconds() - message.CreatedAt >= (long)settings.RetryFor.TotalMilliseconds;
        var delay = TimeSpan.FromTicks(Math.Min(settings.MaxRetryDelay.Ticks, settings.FirstRetryDelay.Ticks * (1L << Math.Min(attempts - 1, 30))));
        await store.MarkFailedAsync(message.Id, attempts, now.Add(delay).ToUnixTimeMilliseconds(), dead ? now.ToUnixTimeMilliseconds() : null, failure.Reason, CancellationToken.None);
        if (dead)
        {
            Log.DeadLettered(logger, message.Id, message.Event, message.InstanceId, attempts, failure.Reason);
        }
        else
        {
            Log.Failed(logger, message.Id, message.Event, message.InstanceId, attempts, failure.Reason, delay);
        }
    }

    private sealed record Failure(string Reason, bool Final = false);

    private async Task<Failure?> SendAsync(WebhookMessage message, CancellationToken stoppingToken)
    {
        // Read at each attempt: an admin may have fixed the URL of an instance whose events were piling up.
        if (!allowlist.Current.Instances.TryGetValue(message.InstanceId, out var instance) || instance.WebhookUrl is not { } url)
        {
            return new("the instance's entry is gone or has no webhookUrl", Final: true);
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, url.ToString())
        {
            Content = new StringContent(Sign(message)) { Headers = { ContentType = new MediaTypeHeaderValue("application/jose") } },
        };
        request.Headers.Add("X-OAuthBroker-Event", message.Event);
        request.Headers.Add("X-OAuthBroker-Delivery", message.DeliveryId);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(options.Value.DeliveryTimeout);
        try
        {
            using var response = await httpClients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            // Only the status is kept: an instance's error page is none of the broker's business.
            return response.IsSuccessStatusCode ? null : new("HTTP " + ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture));
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            return new($"no answer within {options.Value.DeliveryTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        }
        catch (HttpRequestException exception)
        {
            return new("connection failed (" + (exception.HttpRequestError == HttpRequestError.Unknown ? "unknown" : exception.HttpRequestError.ToString()) + ")");
        }
    }

    /// <summary>The event as the instance receives it: a JWS addressed to it, whose <c>payload</c> is GitHub's event as GitHub sent it.</summary>
    public string Sign(WebhookMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var buffer = new ArrayBufferWriter<byte>(message.Payload.Length + 256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("iss", broker.Value.Issuer);
            writer.WriteString("aud", message.InstanceId);
            var now = time.GetUtcNow().ToUnixTimeSeconds();
            writer.WriteNumber("iat", now);
            // Made afresh at each attempt, so it can be short: a body captured on the way is soon worthless.
            writer.WriteNumber("exp", now + (long)EventLifetime.TotalSeconds);
            writer.WriteString("jti", message.DeliveryId);
            writer.WriteString("event", message.Event);
            writer.WritePropertyName("payload");
            writer.WriteRawValue(message.Payload, skipInputValidation: false);
            writer.WriteEndObject();
        }

        var key = keys.Active;
        return Handler.CreateToken(Encoding.UTF8.GetString(buffer.WrittenSpan), new SigningCredentials(key.SecurityKey, key.Algorithm),
            new Dictionary<string, object> { [JwtHeaderParameterNames.Typ] = TokenType });
    }

    public async Task<int> PurgeAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return await store.PurgeAsync(now.Subtract(options.Value.DeliveryRetention).ToUnixTimeMilliseconds(), now.Subtract(options.Value.OutboxRetention).ToUnixTimeMilliseconds(), cancellationToken);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 12101, Level = LogLevel.Information, Message = "Relayed webhook event {Id} ({Event}) to instance {InstanceId}")]
        public static partial void Delivered(ILogger logger, long id, string @event, string instanceId);

        [LoggerMessage(EventId = 12102, Level = LogLevel.Warning, Message = "Relaying webhook event {Id} ({Event}) to instance {InstanceId} failed (attempt {Attempts}: {Reason}); next try in {Delay}")]
        public static partial void Failed(ILogger logger, long id, string @event, string instanceId, int attempts, string reason, TimeSpan delay);

        [LoggerMessage(EventId = 12103, Level = LogLevel.Error, Message = "Webhook event {Id} ({Event}) for instance {InstanceId} is dead-lettered after {Attempts} attempts: {Reason}")]
        public static partial void DeadLettered(ILogger logger, long id, string @event, string instanceId, int attempts, string reason);

        [LoggerMessage(EventId = 12104, Level = LogLevel.Warning, Message = "The webhook outbox could not be read or written; will retry")]
        public static partial void OutboxUnavailable(ILogger logger, Exception exception);
    }
}

/// <summary>The outbox as <c>/admin/api/webhooks</c> shows it: dead-lettered and pending events, without their payloads.</summary>
public sealed record WebhookList(
    [property: JsonPropertyName("dead")] IReadOnlyList<WebhookSummary> Dead,
    [property: JsonPropertyName("pending")] IReadOnlyList<WebhookSummary> Pending);

public sealed record WebhookSummary(
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("instance")] string InstanceId,
    [property: JsonPropertyName("event")] string Event,
    [property: JsonPropertyName("delivery")] string DeliveryId,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("attempts")] int Attempts,
    [property: JsonPropertyName("last_error")] string? LastError,
    [property: JsonPropertyName("next_attempt_at")] DateTimeOffset? NextAttemptAt,
    [property: JsonPropertyName("dead_at")] DateTimeOffset? DeadAt)
{
    public static WebhookSummary Of(WebhookMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new(message.Id, message.InstanceId, message.Event, message.DeliveryId, DateTimeOffset.FromUnixTimeMilliseconds(message.CreatedAt), message.Attempts, message.LastError,
            message.DeadAt is null ? DateTimeOffset.FromUnixTimeMilliseconds(message.NextAttemptAt) : null, message.DeadAt is { } dead ? DateTimeOffset.FromUnixTimeMilliseconds(dead) : null);
    }
}
