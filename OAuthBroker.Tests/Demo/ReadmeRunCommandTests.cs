using System.Text.RegularExpressions;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Demo;

/// <summary>
/// The README's run command and the demo it starts, as a newcomer meets them: real processes and headless Chromium,
/// not the test host (whose own runtimeconfig once hid that <c>dotnet run --demo</c> refused to start). One class, so
/// its two <c>dotnet run</c> builds never run at once.
/// </summary>
public sealed partial class ReadmeRunCommandTests : IDisposable
{
    private static readonly TimeSpan BuildAndStart = TimeSpan.FromMinutes(5);
    private readonly TempDirectory folder = new();

    public void Dispose() => folder.Dispose();

    [Fact]
    public async Task The_READMEs_run_command_starts_the_demo_and_Chromium_signs_in_through_it()
    {
        var run = Readme.Commands("## Quick start")[0];
        run.Text.Should().Be("dotnet run --project OAuthBroker -- --demo");
        var url = OpenUrl().Match(run.Comment).Groups[1].Value;
        url.Should().Be("http://127.0.0.1:5080/", "the README tells the reader what to open");
        var issuer = url.TrimEnd('/');

        // Exactly as written, from the repository root, in the environment a shell gives it: its default port, data
        // folder and allowlist, and the Development environment that launchSettings.json gives `dotnet run`.
        await using var broker = await BrokerProcess.StartReadyAsync(new BrokerCommand("README", run.Words[0], [.. run.Words.Skip(1)]), issuer, timeout: BuildAndStart);
        var walk = await DemoWalk.RunAsync(url);

        walk.ShouldShowASignedInDemoUser(issuer);
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task The_demo_runs_on_the_JIT_build_and_the_native_executable(string build)
    {
        var issuer = $"http://127.0.0.1:{LoopbackPort.Free()}";
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["Urls"] = issuer,
            ["Broker__PublicUrl"] = issuer,
            ["Broker__DataPath"] = Path.Combine(folder.Path, "data"),
        };
        await using var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build, "--demo"), issuer, environment);
        var walk = await DemoWalk.RunAsync(issuer + "/");

        walk.ShouldShowASignedInDemoUser(issuer);
    }

    [Fact]
    public async Task Dotnet_run_without_a_GitHub_app_names_the_settings_to_give()
    {
        var environment = new Dictionary<string, string?>
        {
            ["GitHub__ClientId"] = "",
            ["GitHub__ClientSecret"] = "",
            ["Urls"] = $"http://127.0.0.1:{LoopbackPort.Free()}",
            ["Broker__DataPath"] = Path.Combine(folder.Path, "data"),
        };

        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.DotnetRun(), environment, timeout: BuildAndStart);

        result.ShouldBeAToolError("GitHub:ClientId is required", "GitHub__ClientId", "GitHub:ClientSecret is required", "--demo");
    }

    [GeneratedRegex(@"open (http://\S+)")]
    private static partial Regex OpenUrl();
}
