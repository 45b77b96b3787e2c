using System.Text.Json;
using Jose;
using Microsoft.IdentityModel.JsonWebTokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Admin;

/// <summary>The admin page in headless Chromium (Debian's package, driven by playwright-core), against a broker on Kestrel.</summary>
public sealed class AdminBrowserTests : FakeGitHubTest
{
    /// <summary>A broker on Kestrel (Chromium needs a real socket) whose admin is the fake GitHub's user, renamed octo-admin.</summary>
    internal static BrokerFactory StartWithAdmin(FakeGitHub gitHub, TempDirectory folder, string allowlistJson)
    {
        gitHub.User = gitHub.User with { Login = "octo-admin" };
        var port = LoopbackPort.Free();
        var broker = new BrokerFactory(gitHub, folder, allowlistJson, new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = $"http://127.0.0.1:{port}",
            ["Admin:GitHubLogins:0"] = "octo-admin",
        });
        broker.UseKestrel(port);
        broker.StartServer();
        return broker;
    }

    [Fact]
    public async Task An_admin_signs_in_adds_an_instance_on_the_page_and_a_login_for_it_then_succeeds()
    {
        await using var broker = StartWithAdmin(GitHub, Folder, Instances.Json);

        var (exit, output, error) = await NodeProcess.RunAsync("OAuthBroker.Tests/browser", "admin-flow.mjs", new Dictionary<string, string>
        {
            ["BROKER_URL"] = broker.PublicUrl,
            ["SCREENSHOT"] = Path.Combine(Folder.Path, "admin.png"),
        }, TimeSpan.FromMinutes(2));

        exit.Should().Be(0, error + broker.Logs.AllText);
        using var result = JsonDocument.Parse(output.Trim().Split('\n').Last());
        var root = result.RootElement;
        root.GetProperty("check").GetString().Should().Contain("Accepted for browser-made").And.Contain("loopback, any port");
        root.GetProperty("consoleErrors").GetArrayLength().Should().Be(0, root.GetProperty("consoleErrors").ToString());
        var received = root.GetProperty("received");
        received.GetProperty("state").GetString().Should().Be("from-browser");
        var jwt = new JsonWebToken(received.GetProperty("token").GetString());
        jwt.Audiences.Should().Equal("browser-made");

        var entry = JsonDocument.Parse(await broker.ReadStoredAllowlistAsync()).RootElement.GetProperty("instances").EnumerateArray().Single(i => i.GetProperty("id").GetString() == "browser-made");
        entry.GetProperty("requireState").GetBoolean().Should().BeTrue("the admin page requires state for the entries it creates");
        received.GetProperty("iss").GetString().Should().Be(broker.PublicUrl);
        var secret = Base64Url.Decode(entry.GetProperty("encryptionKey").GetProperty("k").GetString());
        JWT.Decode(jwt.GetPayloadValue<string>("access_token"), secret, JweAlgorithm.A256KW, JweEncryption.A256GCM).Should().StartWith("gho_");
        root.GetProperty("listed").EnumerateArray().Select(link => link.GetString()).Should().Contain("browser-made").And.NotContain("legacy-rsa");
        var file = JsonDocument.Parse(await broker.ReadStoredAllowlistAsync()).RootElement.GetProperty("instances").EnumerateArray().ToList();
        file.Should().NotContain(i => i.GetProperty("id").GetString() == "legacy-rsa");
        file.Single(i => i.GetProperty("id").GetString() == "login-only").GetProperty("scopes").EnumerateArray().Select(scope => scope.GetString())
            .Should().Equal("read:user", "user:email");
        file.Single(i => i.GetProperty("id").GetString() == "login-only").TryGetProperty("requireState", out _).Should().BeFalse("an edit keeps an older entry's choice");
        file.Single(i => i.GetProperty("id").GetString() == "login-only").GetProperty("postLogoutRedirectUris").EnumerateArray().Select(uri => uri.GetString())
            .Should().Equal("https://login-only.example.com/signed-out");
        root.GetProperty("accessEnded").GetString().Should().Be("Access ended");
        root.GetProperty("signedOut").GetString().Should().Be("/admin/signed-out");
        root.GetProperty("afterSignOut").GetString().Should().NotStartWith("/admin/users", "the session is gone: the page asks for a sign-in again");
        File.Exists(Path.Combine(Folder.Path, "admin.png")).Should().BeTrue();
        File.Copy(Path.Combine(Folder.Path, "admin.png"), Path.Combine(Path.GetTempPath(), "oauthbroker-admin.png"), overwrite: true);
    }
}
