using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Hardening;

/// <summary>The real executable, killed with SIGKILL in the middle of a load run and started again on the same data.</summary>
[Collection(RunsAlone.Name)]
public sealed class CrashRecoveryTests : FakeGitHubTest
{
    [Fact]
    public async Task After_SIGKILL_mid_load_the_broker_restarts_with_its_key_old_tokens_verify_and_started_logins_complete()
    {
        var port = LoopbackPort.Free();
        var baseUrl = $"http://127.0.0.1:{port}";
        File.WriteAllText(Path.Combine(Folder.Path, "allowed-redirects.json"), Instances.Json);
        var output = new StringBuilder();

        using (var first = StartBroker(port, output))
        {
            await Readiness.WaitAsync(baseUrl, TimeSpan.FromSeconds(60));
            var token = await new RealBrowser(baseUrl).LoginAsync();
            var jwksBefore = await GetAsync(baseUrl, "/.well-known/jwks.json");

            // Logins approved at GitHub whose browsers have not come back yet when the broker dies.
            var pending = new List<(RealBrowser Browser, string Callback)>();
            for (var i = 0; i < 5; i++)
            {
                var browser = new RealBrowser(baseUrl);
                pending.Add((browser, await browser.StartAndApproveAsync()));
            }

            using var stop = new CancellationTokenSource();
            var completed = 0;
            var killed = false;
            var load = Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
            {
                for (var i = 0; i < 200 && !stop.IsCancellationRequested; i++)
                {
                    try
                    {
                        await new RealBrowser(baseUrl).LoginAsync();
                        Interlocked.Increment(ref completed);
                    }
                    catch (Exception e) when (Volatile.Read(ref killed) && e is HttpRequestException or SocketException or IOException or InvalidOperationException)
                    {
                        // The broker is gone or cut a flow off half-way. A connection torn down while it is being
                        // opened surfaces as a bare SocketException, not wrapped in HttpRequestException.
                        return;
                    }
                }
            }));
            while (Volatile.Read(ref completed) < 40)
            {
                await Task.Delay(10);
            }

            Volatile.Write(ref killed, true); // failures before this point are failures of the broker
            first.Kill(); // SIGKILL: no shutdown, no flush
            await first.WaitForExitAsync();
            await stop.CancelAsync();
            await load;

            using var second = StartBroker(port, output);
            try
            {
                await Readiness.WaitAsync(baseUrl, TimeSpan.FromSeconds(60));
                (await GetAsync(baseUrl, "/.well-known/jwks.json")).Should().Be(jwksBefore, "the signing key and kid survive");
                using var me = new HttpRequestMessage(HttpMethod.Get, baseUrl + "/api/v1/user/me");
                me.Headers.Authorization = new("Bearer", token);
                using var http = new HttpClient();
                (await http.SendAsync(me)).StatusCode.Should().Be(HttpStatusCode.OK, "a token issued before the kill still verifies");
                foreach (var (browser, callback) in pending)
                {
                    (await browser.ReturnFromGitHubAsync(callback)).Should().Contain("token=", "a login started before the kill completes after it");
                }
            }
            finally
            {
                second.Kill();
                await second.WaitForExitAsync();
            }
        }

        SecretScan.AssertAbsent(GitHub.Secrets, output.ToString(), Path.Combine(Folder.Path, "data"));
    }

    private Process StartBroker(int port, StringBuilder output)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = Folder.Path, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "OAuthBroker.dll"));
        var settings = GitHub.BrokerSettings();
        settings["Urls"] = $"http://127.0.0.1:{port}";
        settings["Broker:PublicUrl"] = $"http://127.0.0.1:{port}";
        settings["Broker:AllowlistPath"] = Path.Combine(Folder.Path, "allowed-redirects.json");
        settings["Broker:DataPath"] = Path.Combine(Folder.Path, "data");
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in FakeGitHub.AsEnvironment(settings))
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, line) => { lock (output) { output.AppendLine(line.Data); } };
        process.ErrorDataReceived += (_, line) => { lock (output) { output.AppendLine(line.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task<string> GetAsync(string baseUrl, string path)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(baseUrl + path);
    }

    /// <summary>A browser over real sockets: its own cookie jar, redirects followed by hand.</summary>
    private sealed class RealBrowser(string baseUrl)
    {
        private static readonly HttpClient GitHubPages = new(new SocketsHttpHandler { AllowAutoRedirect = false });
        private readonly HttpClient client = new(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(baseUrl) };

        public async Task<string> StartAndApproveAsync()
        {
            using var start = await client.GetAsync(Browser.StartUrl(StandardInstances.TrackeepCallback));
            if (start.StatusCode != HttpStatusCode.Redirect)
            {
                throw new InvalidOperationException($"start answered {start.StatusCode}");
            }

            using var approval = await GitHubPages.GetAsync(start.Headers.Location);
            return approval.Headers.Location?.ToString() ?? throw new InvalidOperationException("GitHub did not redirect back");
        }

        public async Task<string> ReturnFromGitHubAsync(string callback)
        {
            using var response = await client.GetAsync(new Uri(callback).PathAndQuery);
            return response.Headers.Location?.ToString() ?? throw new InvalidOperationException($"callback answered {response.StatusCode}");
        }

        public async Task<string> LoginAsync()
        {
            var location = await ReturnFromGitHubAsync(await StartAndApproveAsync());
            return Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(location).Query)["token"].ToString();
        }
    }
}
