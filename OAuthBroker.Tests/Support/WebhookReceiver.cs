using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OAuthBroker.Tests.Support;

/// <summary>What an instance's webhook URL received: the body (a JWS) and the broker's headers.</summary>
public sealed record ReceivedEvent(string Body, string? ContentType, string? Event, string? Delivery);

/// <summary>
/// An instance's webhook endpoint on 127.0.0.1: records what the broker relays, answers with <see cref="Status"/>
/// (200 by default), and can hold every request until <see cref="Release"/>, as a slow instance would.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication app;
    private TaskCompletionSource gate = Open();

    private WebhookReceiver(WebApplication app) => this.app = app;

    public ConcurrentQueue<ReceivedEvent> Received { get; } = new();

    /// <summary>Every request, answered or not, in order of arrival.</summary>
    public int Attempts => Volatile.Read(ref attempts);

    private int attempts;

    /// <summary>The status for the next requests; a function of the attempt number (1-based).</summary>
    public Func<int, int> Status { get; set; } = _ => StatusCodes.Status200OK;

    public string Url { get; private set; } = "";

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/hooks", async (HttpContext context) =>
        {
            var attempt = Interlocked.Increment(ref receiver.attempts);
            await receiver.gate.Task.WaitAsync(context.RequestAborted);
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            var status = receiver.Status(attempt);
            if (status is >= 200 and < 300)
            {
                receiver.Received.Enqueue(new ReceivedEvent(body, context.Request.ContentType, context.Request.Headers["X-OAuthBroker-Event"], context.Request.Headers["X-OAuthBroker-Delivery"]));
            }

            return Results.StatusCode(status);
        });
        await app.StartAsync();
        receiver.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/') + "/hooks";
        return receiver;
    }

    /// <summary>Holds every request from now on until <see cref="Release"/>.</summary>
    public void Hold() => gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => gate.TrySetResult();

    private static TaskCompletionSource Open()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    public async ValueTask DisposeAsync()
    {
        Release();
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
