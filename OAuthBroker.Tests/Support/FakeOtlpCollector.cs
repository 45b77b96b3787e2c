using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// An OTLP/HTTP receiver on 127.0.0.1 that keeps what it is sent (<c>POST /v1/traces</c>, <c>/v1/metrics</c>,
/// <c>/v1/logs</c>, protobuf bodies) for the tests to search; it answers 200 as a collector does.
/// </summary>
public sealed class FakeOtlpCollector : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly ConcurrentQueue<(string Signal, byte[] Body)> received = new();

    private FakeOtlpCollector(WebApplication app) => this.app = app;

    public string Url { get; private set; } = "";

    public IReadOnlyList<(string Signal, byte[] Body)> Received => [.. received];

    public static async Task<FakeOtlpCollector> StartAsync()
    {
        var url = $"http://127.0.0.1:{LoopbackPort.Free()}";
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(url);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var collector = new FakeOtlpCollector(app) { Url = url };
        app.MapPost("/v1/{signal}", async (string signal, HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            collector.received.Enqueue((signal, body.ToArray()));
            return Results.Ok();
        });
        await app.StartAsync();
        return collector;
    }

    /// <summary>Whether any body of <paramref name="signal"/> holds <paramref name="text"/> (protobuf keeps strings as UTF-8).</summary>
    public bool Holds(string signal, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return received.Any(item => item.Signal == signal && item.Body.AsSpan().IndexOf(bytes) >= 0);
    }

    public bool HoldsAnywhere(string text) => received.Select(item => item.Signal).Distinct().Any(signal => Holds(signal, text));

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
