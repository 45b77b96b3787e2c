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

    [Fact]
    public async Task The_integration_recipe_against_the_demo_runs_as_written_and_Chromium_signs_in_through_the_example()
    {
        // The block as a reader pastes it into one shell at the repository root: the demo broker on 5080 in the
        // background, the Node.js example on 3000 in the foreground. Three origins but one: the demo's stand-in GitHub
        // lives on the broker's. Its consent form once led, through the broker's redirect, to the example's origin,
        // which the page's form-action blocked in Chromium.
        var block = Readme.ShellBlock("# Integrating an instance", "node keygen.mjs", "docs/integrating.md");
        var example = Path.Combine(NodeProcess.RepositoryRoot, "examples", "node-instance");
        try
        {
            await using var recipe = BrokerProcess.Start(new BrokerCommand("README integration recipe", "bash", ["-c", block]));
            await Readiness.WaitAsync("http://127.0.0.1:5080", BuildAndStart, () => recipe.ExitCode is { } exit ? $"the recipe exited with {exit}:\n{recipe.Output}\n{recipe.Error}" : null);
            using var http = new HttpClient();
            (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(30), async () =>
            {
                try
                {
                    using var probe = await http.GetAsync("http://127.0.0.1:3000/");
                    return true;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            })).Should().BeTrue($"the example listens on 3000: {recipe.Output}\n{recipe.Error}");

            var walk = await BrowserWalk.RunAsync("instance-walk.mjs", new Dictionary<string, string> { ["INSTANCE_URL"] = "http://127.0.0.1:3000" });

            walk.Root.GetProperty("consentClicked").GetBoolean().Should().BeTrue("the demo's stand-in GitHub asks for consent");
            walk.FinalUrl.Should().StartWith("http://127.0.0.1:3000/auth/callback");
            var result = walk.Root.GetProperty("result");
            result.GetProperty("signedInAs").GetString().Should().Be("octocat-demo", result.ToString());
            result.GetProperty("gitHubUser").GetProperty("status").GetInt32().Should().Be(200, "the decrypted token works against the demo's GitHub API");
        }
        finally
        {
            File.Delete(Path.Combine(example, "instance-key.json"));
            File.Delete(Path.Combine(example, "demo-allowlist.json"));
        }
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
