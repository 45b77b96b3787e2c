using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Cli;

/// <summary>
/// A stranger's first commands, on the JIT build's dll and the native executable, each run from an empty folder with
/// only the documented environment variables: no appsettings.json beside them, so every default must come from the
/// build. A first <c>--help</c> or a typo never starts a server.
/// </summary>
public sealed partial class FirstRunTests : IDisposable
{
    private readonly TempDirectory folder = new();

    public void Dispose() => folder.Dispose();

    public static TheoryData<string, string> HelpWords => new() { { "dll", "--help" }, { "dll", "-h" }, { "dll", "help" }, { "native", "--help" }, { "native", "-h" }, { "native", "help" } };

    [Theory]
    [MemberData(nameof(HelpWords))]
    public async Task Help_lists_every_way_to_run_and_every_command_and_starts_nothing(string build, string word)
    {
        // With a GitHub app in the environment, a server would start if the word were taken for a setting.
        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, word), WouldServe(), folder.Path);

        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("Usage:").And.Contain("--demo").And.Contain("allowlist").And.Contain("keys").And.Contain("health").And.Contain("--version");
        result.Error.Should().BeEmpty();
        Directory.EnumerateFileSystemEntries(folder.Path).Should().BeEmpty("nothing started, so nothing was written");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task Version_prints_the_version_and_the_commit(string build)
    {
        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "--version"), WouldServe(), folder.Path);

        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Trim().Should().MatchRegex(@"^OAuthBroker \d+\.\d+\.\d+ \(commit [0-9a-f]{12}\)$");
    }

    [Theory]
    [InlineData("dll", "--dmeo")]
    [InlineData("native", "--dmeo")]
    [InlineData("dll", "serve")]
    [InlineData("dll", "--demo --verbose")]
    [InlineData("native", "allowlists")]
    public async Task An_unknown_option_or_command_prints_the_usage_and_exits_2_without_starting(string build, string arguments)
    {
        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, arguments.Split(' ')), WouldServe(), folder.Path);

        result.ExitCode.Should().Be(2, result.Output + result.Error);
        result.Error.Should().Contain($"'{arguments.Split(' ')[^1]}'").And.Contain("Usage:");
        Directory.EnumerateFileSystemEntries(folder.Path).Should().BeEmpty("nothing started, so nothing was written");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task The_demo_on_another_port_follows_its_own_address_for_links_and_issuer(string build)
    {
        var address = $"http://127.0.0.1:{LoopbackPort.Free()}";

        // The README's words: another port with --urls, no Broker:PublicUrl, no settings file.
        await using var demo = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build, "--urls", address, "--demo"), address,
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" }, workingDirectory: folder.Path);

        using var http = new HttpClient();
        var discovery = await http.GetFromJsonAsync<JsonElement>(address + "/.well-known/openid-configuration");
        discovery.GetProperty("issuer").GetString().Should().Be(address);
        var instancePage = await http.GetStringAsync(address + "/demo/instance");
        instancePage.Should().NotContain("5080", "no link points at the default port");
        var walk = await DemoWalk.RunAsync(address + "/");
        walk.ShouldShowASignedInDemoUser(address);
        walk.Claims["exp"].Should().MatchRegex(@"^\d+ \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$", "times read as dates beside their numbers");

        var cancelled = await DemoWalk.RunAsync(address + "/", "cancel");
        cancelled.ConsoleErrors.Should().BeEmpty();
        cancelled.UserCall.Should().Contain("cancelled", "a cancelled sign-in says so, and the walk then started again from its button");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task A_production_start_allowlist_commands_and_health_need_only_the_documented_variables(string build)
    {
        var port = LoopbackPort.Free();
        await File.WriteAllTextAsync(Path.Combine(folder.Path, "allowed-redirects.json"), """{ "instances": [] }""");

        // The admin commands ask for nothing they do not use: no GitHub app, no public URL, no key.
        var add = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "allowlist", "add", "--id", "my-app", "--redirect", "https://app.example.com/auth/callback", "--generate-secret"),
            new Dictionary<string, string?>(), folder.Path);
        add.ExitCode.Should().Be(0, add.Output + add.Error);
        var list = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "allowlist", "list"), new Dictionary<string, string?>(), folder.Path);
        list.ExitCode.Should().Be(0, list.Output + list.Error);
        list.Output.Should().Contain("my-app");

        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["GitHub__ClientId"] = "Ov23liFirstRun",
            ["GitHub__ClientSecret"] = "first-run-secret-0123456789",
            ["Broker__PublicUrl"] = "https://oauth.example.com",
            ["Broker__KeyEncryptionKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
            ["Urls"] = $"http://127.0.0.1:{port}",
        };
        await using (var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), $"http://127.0.0.1:{port}", environment, workingDirectory: folder.Path))
        {
            var health = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "health"), new Dictionary<string, string?> { ["Urls"] = environment["Urls"] }, folder.Path);
            health.ExitCode.Should().Be(0, health.Output + health.Error);
            health.Output.Should().Contain("ready");
            (broker.Output + broker.Error).Should().NotContain("Overriding", "the build's listen address is the only one");
        }

        // The default listen address is the build's own (127.0.0.1:5080), not Kestrel's (localhost:5000).
        var defaultHealth = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "health"), new Dictionary<string, string?>(), folder.Path);
        defaultHealth.Output.Should().Contain("http://127.0.0.1:5080/readyz");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task No_start_up_error_prints_an_empty_value_where_a_setting_belongs(string build)
    {
        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "--urls", "http://0.0.0.0:8080", "--demo"),
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Development" }, folder.Path);

        result.ShouldBeAToolError("Urls http://0.0.0.0:8080", "loopback");
        EmptyValue().IsMatch(result.Error).Should().BeFalse(result.Error);

        var production = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "--urls", "http://0.0.0.0:8080"),
            new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production", ["GitHub__ClientId"] = "x", ["GitHub__ClientSecret"] = "y" }, folder.Path);
        production.ShouldBeAToolError("Broker:PublicUrl is required", "Broker__PublicUrl");
        EmptyValue().IsMatch(production.Error).Should().BeFalse(production.Error);
    }

    private static Dictionary<string, string?> WouldServe() => new()
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Development",
        ["GitHub__ClientId"] = "Ov23liWouldServe",
        ["GitHub__ClientSecret"] = "would-serve-secret",
        ["Urls"] = $"http://127.0.0.1:{LoopbackPort.Free()}",
    };

    // "and  is not", "'' ", ": ." — a name or value left out of a sentence.
    [GeneratedRegex(@"\s\s(is|are|not)\b|''|:\s*\.")]
    private static partial Regex EmptyValue();
}
