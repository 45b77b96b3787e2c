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
    public async Task The_install_relay_the_org_access_page_and_logout_end_at_the_instance_on_its_own_origin()
    {
        var instancePort = LoopbackPort.Free();
        var document = System.Text.Json.Nodes.JsonNode.Parse(new AllowlistBuilder().Add("walk-app", ["http://127.0.0.1/browser/callback"], InstanceKey.Rsa()).ToJson())!;
        var entry = document["instances"]![0]!.AsObject();
        entry.Remove("scopes");
        entry["provider"] = "github-app";
        entry["postLogoutRedirectUris"] = new System.Text.Json.Nodes.JsonArray($"http://127.0.0.1:{instancePort}/signed-out");
        var port = LoopbackPort.Free();
        await using var broker = new BrokerFactory(GitHub, Folder, document.ToJsonString(), new Dictionary<string, string?> { ["Broker:PublicUrl"] = $"http://127.0.0.1:{port}" });
        broker.UseKestrel(port);
        broker.StartServer();
        GitHub.AppCallbackUrl = broker.PublicUrl + "/auth/github/callback";

        var walk = await BrowserWalk.RunAsync("relay-walk.mjs", new Dictionary<string, string>
        {
            ["BROKER_URL"] = broker.PublicUrl,
            ["INSTANCE_PORT"] = instancePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CLIENT_ID"] = "walk-app",
        });

        var install = walk.Root.GetProperty("install");
        install.GetProperty("path").GetString().Should().Be("/browser/callback");
        install.GetProperty("query").GetProperty("state").GetString().Should().Be("install-walk");
        new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(install.GetProperty("query").GetProperty("token").GetString()).GetPayloadValue<long>("installation_id").Should().Be(4242);
        walk.Root.GetProperty("gitHubLink").GetString().Should().StartWith(GitHub.BaseUrl, "the org-access page links to the app's page on GitHub");
        walk.Root.GetProperty("orgAccess").GetProperty("path").GetString().Should().Be("/browser/callback");
        var logout = walk.Root.GetProperty("logout");
        logout.GetProperty("path").GetString().Should().Be("/signed-out");
        logout.GetProperty("query").GetProperty("state").GetString().Should().Be("logout-walk");
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
