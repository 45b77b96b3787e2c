using System.Text.Json;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.BrowserWalks;

/// <summary>
/// The broker's browser paths in headless Chromium, with the broker, GitHub (the test fake) and the instance each on its
/// own origin (another port on 127.0.0.1 is another origin) and the broker's real headers. An HTTP client ignores CSP;
/// Chromium checks <c>form-action</c> against a form's whole redirect chain, which is how "Disconnect from all" once
/// did nothing in a browser while every HTTP test passed.
/// </summary>
public sealed class CrossOriginWalkTests : FakeGitHubTest
{
    private BrokerFactory StartBroker()
    {
        var port = LoopbackPort.Free();
        var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = $"http://127.0.0.1:{port}",
        });
        broker.UseKestrel(port);
        broker.StartServer();
        new Uri(broker.PublicUrl).Port.Should().NotBe(new Uri(GitHub.BaseUrl).Port, "GitHub is on an origin of its own");
        return broker;
    }

    [Fact]
    public async Task Account_sign_in_disconnect_from_each_app_and_sign_out_work_with_GitHub_on_another_origin()
    {
        await using var broker = StartBroker();

        var walk = await BrowserWalk.RunAsync("account-walk.mjs", new Dictionary<string, string> { ["BROKER_URL"] = broker.PublicUrl });

        walk.Root.GetProperty("signedInAs").GetString().Should().Be(GitHub.User.Login);
        walk.Root.GetProperty("apps").EnumerateArray().Select(app => app.GetString()).Should().Equal("disconnect-oauth-app", "disconnect-github-app");
        var disconnected = walk.Root.GetProperty("disconnected").EnumerateArray().ToList();
        disconnected.Should().HaveCount(2);
        disconnected.Should().OnlyContain(step => step.GetProperty("url").GetString()!.StartsWith(broker.PublicUrl + "/auth/github/callback?", StringComparison.Ordinal),
            "the disconnect went to GitHub and came back to the broker's callback");
        GitHub.GrantRevokeCallCount.Should().Be(2, "each click revoked that app's grant at GitHub");
        walk.Root.GetProperty("signedOut").GetString().Should().Be("/account");
    }

    [Fact]
    public async Task Refusal_pages_render_under_the_CSP_without_a_console_error()
    {
        await using var broker = StartBroker();
        var pages = new[]
        {
            $"{broker.PublicUrl}/auth/github?redirect_uri={Uri.EscapeDataString("https://evil.example.com/cb")}&state=s",
            $"{broker.PublicUrl}/auth/github/callback?code=c&state=forged",
            $"{broker.PublicUrl}/auth/github?state=s",
        };

        var walk = await BrowserWalk.RunAsync("pages-walk.mjs", new Dictionary<string, string> { ["PAGES"] = JsonSerializer.Serialize(pages) });

        var seen = walk.Root.GetProperty("seen").EnumerateArray().ToList();
        seen.Should().HaveCount(pages.Length);
        seen.Should().OnlyContain(page => page.GetProperty("status").GetInt32() >= 400 && page.GetProperty("status").GetInt32() < 500);
        seen.Should().OnlyContain(page => page.GetProperty("heading").GetString()!.Length > 0);
    }
}
