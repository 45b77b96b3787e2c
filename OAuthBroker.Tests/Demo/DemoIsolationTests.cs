using System.Net;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Demo;

/// <summary>A demo never runs beside real instances: not on the configured data or allowlist, not off loopback.</summary>
public sealed class DemoIsolationTests : IDisposable
{
    private readonly TempDirectory folder = new();

    public void Dispose() => folder.Dispose();

    [Fact]
    public async Task The_demo_keeps_its_own_data_folder_and_serves_no_instance_of_the_configured_allowlist()
    {
        var realData = Path.Combine(folder.Path, "real-data");
        var realAllowlist = Path.Combine(folder.Path, "allowed-redirects.json");
        File.WriteAllText(realAllowlist, new AllowlistBuilder().Add("real-one", ["https://real.example.com/cb"], null).ToJson());
        var (issuer, environment) = Demo(new() { ["Broker__DataPath"] = realData, ["Broker__AllowlistPath"] = realAllowlist });
        await using var demo = await BrokerProcess.StartReadyAsync(BrokerCommand.Dll("--demo"), issuer, environment);
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(issuer) };

        using var real = await http.GetAsync(Browser.StartUrl("https://real.example.com/cb"));
        using var own = await http.GetAsync(Browser.StartUrl(issuer + "/demo/instance/callback"));

        real.StatusCode.Should().Be(HttpStatusCode.BadRequest, "the real allowlist's instances are not the demo's");
        own.StatusCode.Should().Be(HttpStatusCode.Redirect, "the demo instance is");
        Directory.Exists(realData).Should().BeFalse("the demo's database and signing key live in a folder of their own");
    }

    [Fact]
    public async Task An_instance_of_your_own_can_be_tried_against_the_demo_through_Demo_AllowlistPath()
    {
        var own = Path.Combine(folder.Path, "demo-allowlist.json");
        File.WriteAllText(own, new AllowlistBuilder().Add("node-example", ["http://127.0.0.1/auth/callback"], null).ToJson());
        var (issuer, environment) = Demo(new() { ["Demo__AllowlistPath"] = own });
        await using var demo = await BrokerProcess.StartReadyAsync(BrokerCommand.Dll("--demo"), issuer, environment);
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(issuer) };

        using var start = await http.GetAsync(Browser.StartUrl("http://127.0.0.1:3000/auth/callback"));

        start.StatusCode.Should().Be(HttpStatusCode.Redirect);
    }

    [Fact]
    public async Task A_Demo_AllowlistPath_that_names_no_file_stops_start_up_instead_of_being_created_empty()
    {
        var missing = Path.Combine(folder.Path, "typo-allowlist.json");
        var (_, environment) = Demo(new() { ["Demo__AllowlistPath"] = missing });

        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll("--demo"), environment);

        result.ShouldBeAToolError($"Demo:AllowlistPath names {missing}, which does not exist");
        File.Exists(missing).Should().BeFalse();
    }

    [Fact]
    public async Task With_the_demo_user_as_admin_the_admin_page_signs_in_through_the_stand_in_and_lists_the_demo_instance()
    {
        var (issuer, environment) = Demo(new() { ["Admin__GitHubLogins__0"] = "octocat-demo" });
        await using var demo = await BrokerProcess.StartReadyAsync(BrokerCommand.Dll("--demo"), issuer, environment);

        var walk = await BrowserWalk.RunAsync("demo-admin-walk.mjs", new Dictionary<string, string> { ["BROKER_URL"] = issuer });

        walk.Root.GetProperty("signedInAs").GetString().Should().Be("octocat-demo");
        walk.Root.GetProperty("instances").EnumerateArray().Select(cell => cell.GetString()).Should().Equal("demo-instance");
    }

    [Fact]
    public async Task A_killed_demos_folder_is_swept_by_the_next_demo_and_no_folder_of_a_live_process_or_without_a_mark_is_touched()
    {
        var temp = Path.GetTempPath();
        var (firstIssuer, firstEnvironment) = Demo([]);
        await using var first = await BrokerProcess.StartReadyAsync(BrokerCommand.Dll("--demo"), firstIssuer, firstEnvironment);
        var killedFolder = Directory.EnumerateDirectories(temp, "oauthbroker-demo-*")
            .Single(dir => File.Exists(Path.Combine(dir, "owner")) && File.ReadAllText(Path.Combine(dir, "owner")).StartsWith($"{first.Id} ", StringComparison.Ordinal));
        first.KillHard();
        await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
        Directory.Exists(killedFolder).Should().BeTrue("a killed demo cannot delete its folder");

        // Beside it: a folder whose mark names this live test process, one whose process id was reused by another
        // process (same id, another start time), and one with no mark, which the broker did not make.
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        var live = MakeDemoFolder($"{self.Id} {self.StartTime.ToUniversalTime().Ticks}");
        var reused = MakeDemoFolder($"{self.Id} 42");
        var unmarked = Directory.CreateTempSubdirectory("oauthbroker-demo-").FullName;
        try
        {
            var (issuer, environment) = Demo([]);
            await using var next = await BrokerProcess.StartReadyAsync(BrokerCommand.Dll("--demo"), issuer, environment);

            Directory.Exists(killedFolder).Should().BeFalse("the next demo swept the killed one's folder");
            Directory.Exists(reused).Should().BeFalse("its process is gone, whatever now has the id");
            Directory.Exists(live).Should().BeTrue("its process still runs");
            Directory.Exists(unmarked).Should().BeTrue("a folder without the broker's mark is not the broker's");
        }
        finally
        {
            foreach (var made in new[] { live, reused, unmarked }.Where(Directory.Exists))
            {
                Directory.Delete(made, recursive: true);
            }
        }

        static string MakeDemoFolder(string mark)
        {
            var made = Directory.CreateTempSubdirectory("oauthbroker-demo-").FullName;
            File.WriteAllText(Path.Combine(made, "owner"), mark);
            return made;
        }
    }

    /// <summary>A demo on a free loopback port in the Development environment, with <paramref name="settings"/> besides.</summary>
    private static (string Issuer, Dictionary<string, string?> Environment) Demo(Dictionary<string, string?> settings)
    {
        var issuer = $"http://127.0.0.1:{LoopbackPort.Free()}";
        settings["ASPNETCORE_ENVIRONMENT"] = "Development";
        settings["Urls"] = issuer;
        settings["Broker__PublicUrl"] = issuer;
        return (issuer, settings);
    }
}
