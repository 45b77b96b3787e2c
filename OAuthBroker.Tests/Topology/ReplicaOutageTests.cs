using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Topology;

/// <summary>
/// PostgreSQL stopped under two replicas of the native executable for 10 seconds, then started again: both say they
/// are not ready, answer logins with a 503 page (never a redirect, never a token), and serve again without a restart;
/// a login started before the outage still completes after it. The cluster is this test's own, since it is stopped.
/// </summary>
public sealed class ReplicaOutageTests : FakeGitHubTest
{
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task PostgreSQL_stopped_for_10_seconds_makes_both_replicas_unready_and_answer_503_and_both_recover_without_restart()
    {
        var cluster = await PostgresCluster.StartNewAsync();
        var settings = new Dictionary<string, string?>
        {
            ["Broker:Database"] = "postgres",
            ["ConnectionStrings:Broker"] = await cluster.CreateDatabaseAsync(),
            // One public URL for both, as behind a proxy: the callback GitHub returns to is the same on either replica.
            ["Broker:PublicUrl"] = $"http://127.0.0.1:{LoopbackPort.Free()}",
        };
        await using var a = await NativeBroker.StartAsync(GitHub, Replica("a"), Instances.Json, settings);
        await using var b = await NativeBroker.StartAsync(GitHub, Replica("b"), Instances.Json, settings);
        (await LoginAsync(a.PublicUrl, b.PublicUrl)).Should().Contain("token=");
        var (pendingCallback, pendingCookie) = await HttpLogin.StartAndApproveAsync(a.PublicUrl);

        await cluster.StopServerAsync();
        var stoppedAt = DateTime.UtcNow;

        foreach (var replica in new[] { a, b })
        {
            (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () => await ReadyAsync(replica.PublicUrl) == HttpStatusCode.ServiceUnavailable))
                .Should().BeTrue($"{replica.PublicUrl} reports the outage in /readyz: {replica.Output}");
            using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
            using var start = await http.GetAsync(replica.PublicUrl + Browser.StartUrl(StandardInstances.TrackeepCallback));
            start.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
            start.Headers.Location.Should().BeNull();
            start.Content.Headers.ContentType!.MediaType.Should().Be("text/html");
            (await start.Content.ReadAsStringAsync()).Should().Contain("cannot reach its database");
            using var callback = await HttpLogin.ReturnAsync(replica.PublicUrl, pendingCallback, pendingCookie);
            callback.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable, "a callback during the outage gets no token");
            callback.Headers.Location.Should().BeNull();
        }

        GitHub.TokenCallCount.Should().Be(1, "nothing was redeemed at GitHub during the outage");
        var left = Outage - (DateTime.UtcNow - stoppedAt);
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left);
        }

        await cluster.StartServerAsync();

        foreach (var replica in new[] { a, b })
        {
            (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(15), async () => await ReadyAsync(replica.PublicUrl) == HttpStatusCode.OK))
                .Should().BeTrue($"{replica.PublicUrl} recovers without a restart: {replica.Output}");
        }

        using (var resumed = await HttpLogin.ReturnAsync(b.PublicUrl, pendingCallback, pendingCookie))
        {
            resumed.Headers.Location!.Query.Should().Contain("token=", "a login started before the outage is not lost");
        }

        (await LoginAsync(b.PublicUrl, a.PublicUrl)).Should().Contain("token=");
    }

    private string Replica(string name)
    {
        var folder = Path.Combine(Folder.Path, name);
        Directory.CreateDirectory(folder);
        return folder;
    }

    private static async Task<HttpStatusCode> ReadyAsync(string baseUrl)
    {
        using var http = new HttpClient();
        using var response = await http.GetAsync(baseUrl + "/readyz");
        return response.StatusCode;
    }

    private static async Task<string> LoginAsync(string startOn, string finishOn)
    {
        var (callback, cookie) = await HttpLogin.StartAndApproveAsync(startOn);
        using var back = await HttpLogin.ReturnAsync(finishOn, callback, cookie);
        back.StatusCode.Should().Be(HttpStatusCode.Redirect, await back.Content.ReadAsStringAsync());
        QueryHelpers.ParseQuery(back.Headers.Location!.Query).Should().ContainKey("token");
        return back.Headers.Location.Query;
    }
}
