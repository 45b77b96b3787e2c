using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.WebUtilities;

namespace FlowBench;

internal sealed record FlowResult(string Target, string Scenario, int Concurrency, int Flows, double Seconds, double FlowsPerSecond,
    double P50Ms, double P90Ms, double P99Ms, IReadOnlyDictionary<string, int> Errors, double CpuSeconds, double CpuMsPerFlow, double PeakRssMb,
    double DatabaseCpuSeconds = 0, double DatabaseCpuMsPerFlow = double.NaN)
{
    /// <summary>Rounds of one target and concurrency as one result: totals for flows, time and CPU; the median round's percentiles.</summary>
    public static FlowResult Combine(IReadOnlyList<FlowResult> rounds)
    {
        var flows = rounds.Sum(r => r.Flows);
        var seconds = rounds.Sum(r => r.Seconds);
        var cpu = rounds.Sum(r => r.CpuSeconds);
        var databaseCpu = rounds.Sum(r => r.DatabaseCpuSeconds);
        double Median(Func<FlowResult, double> value) => rounds.Select(value).Order().ElementAt(rounds.Count / 2);
        var errors = rounds.SelectMany(r => r.Errors).GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.Sum(e => e.Value));
        return new FlowResult(rounds[0].Target, rounds[0].Scenario, rounds[0].Concurrency, flows, Math.Round(seconds, 2), Math.Round(flows / seconds, 1),
            Median(r => r.P50Ms), Median(r => r.P90Ms), Median(r => r.P99Ms), errors, Math.Round(cpu, 2),
            flows == 0 ? double.NaN : Math.Round(cpu * 1000 / flows, 3), rounds.Max(r => r.PeakRssMb),
            Math.Round(databaseCpu, 2), flows == 0 || double.IsNaN(rounds[0].DatabaseCpuMsPerFlow) ? double.NaN : Math.Round(databaseCpu * 1000 / flows, 3));
    }
}

/// <summary>Virtual browsers, each with its own cookie jar, through the whole login flow; bounded in time and count.</summary>
internal static class FlowDriver
{
    private static readonly HttpClient GitHubPages = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        MaxConnectionsPerServer = 1024,
        SslOptions = new System.Net.Security.SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => errors == System.Net.Security.SslPolicyErrors.None || certificate?.GetCertHashString() == TrustedCertificateHash,
        },
    });

    /// <summary>With --tls: the fake GitHub's self-signed certificate, which the driver trusts on its authorize page.</summary>
    public static string? TrustedCertificateHash { get; set; }

    public const string Callback = "https://instance.bench.example/auth/callback";

    public static async Task<FlowResult> RunAsync(string target, string scenario, ServerProcess server, int concurrency, TimeSpan warmUp, TimeSpan measure, int maxFlows = int.MaxValue)
    {
        await LoopAsync(server.BaseUrl, concurrency, warmUp, int.MaxValue, null, null);

        var latencies = new ConcurrentBag<double>();
        var errors = new ConcurrentDictionary<string, int>();
        var cpuBefore = server.CpuSeconds;
        var databaseCpuBefore = server.DatabaseCpuSeconds?.Invoke() ?? 0;
        var peak = server.ResidentMegabytes;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, server.ResidentMegabytes);
                await Task.Delay(50);
            }
        });
        var clock = Stopwatch.StartNew();
        await LoopAsync(server.BaseUrl, concurrency, measure, maxFlows, latencies, errors);
        var seconds = clock.Elapsed.TotalSeconds;
        var cpu = server.CpuSeconds - cpuBefore;
        var databaseCpu = server.DatabaseCpuSeconds is { } database ? database() - databaseCpuBefore : double.NaN;
        await sampling.CancelAsync();
        await sampler;

        var sorted = latencies.Order().ToArray();
        double Percentile(double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        return new FlowResult(target, scenario, concurrency, sorted.Length, Math.Round(seconds, 2), Math.Round(sorted.Length / seconds, 1),
            Math.Round(Percentile(0.50), 2), Math.Round(Percentile(0.90), 2), Math.Round(Percentile(0.99), 2),
            new Dictionary<string, int>(errors), Math.Round(cpu, 2), sorted.Length == 0 ? double.NaN : Math.Round(cpu * 1000 / sorted.Length, 3), Math.Round(peak, 1),
            double.IsNaN(databaseCpu) ? 0 : Math.Round(databaseCpu, 2), double.IsNaN(databaseCpu) || sorted.Length == 0 ? double.NaN : Math.Round(databaseCpu * 1000 / sorted.Length, 3));
    }

    private static async Task LoopAsync(string baseUrl, int concurrency, TimeSpan duration, int maxFlows, ConcurrentBag<double>? latencies, ConcurrentDictionary<string, int>? errors)
    {
        var deadline = Stopwatch.StartNew();
        var remaining = maxFlows;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
        {
            using var browser = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(baseUrl) };
            var n = 0;
            while (deadline.Elapsed < duration && Interlocked.Decrement(ref remaining) >= 0)
            {
                var state = $"w{worker}-{n++}";
                var flow = Stopwatch.StartNew();
                var error = await OneFlowAsync(browser, state);
                if (error is null)
                {
                    latencies?.Add(flow.Elapsed.TotalMilliseconds);
                }
                else
                {
                    errors?.AddOrUpdate(error, 1, (_, count) => count + 1);
                }
            }
        }));
    }

    /// <summary>One login; returns null on success or the kind of failure.</summary>
    private static async Task<string?> OneFlowAsync(HttpClient browser, string state)
    {
        try
        {
            using var start = await browser.GetAsync(QueryHelpers.AddQueryString("/auth/github", new Dictionary<string, string?> { ["redirect_uri"] = Callback, ["state"] = state }));
            if (start.StatusCode != HttpStatusCode.Redirect)
            {
                return $"start:{(int)start.StatusCode}";
            }

            using var approval = await GitHubPages.GetAsync(start.Headers.Location);
            if (approval.StatusCode != HttpStatusCode.Redirect)
            {
                return $"authorize:{(int)approval.StatusCode}";
            }

            using var callback = await browser.GetAsync(approval.Headers.Location!.PathAndQuery);
            if (callback.StatusCode != HttpStatusCode.Redirect || callback.Headers.Location is not { } final)
            {
                return $"callback:{(int)callback.StatusCode}";
            }

            var query = QueryHelpers.ParseQuery(final.Query);
            return !query.ContainsKey("token") ? "no-token:" + query.GetValueOrDefault("error")
                : query["state"] != state ? "state-mismatch"
                : null;
        }
        catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
        {
            return "exception:" + exception.GetType().Name;
        }
    }
}
