using System.Net;
using System.Net.Sockets;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Health;

/// <summary>
/// A broker that cannot start says why as a tool does (exit code 1, a few lines naming the key, file or address and
/// what to do, no stack trace), on the JIT build and the native executable, as the service and as the admin CLI.
/// </summary>
public sealed class StartupErrorTests : IDisposable
{
    private readonly TempDirectory folder = new();

    public void Dispose() => folder.Dispose();

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task A_missing_setting_names_the_key_and_its_environment_variable(string build)
    {
        var result = await StartAsync(build, new() { ["GitHub__ClientId"] = "" });

        result.ShouldBeAToolError("GitHub:ClientId is required", "environment variable GitHub__ClientId");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task A_GitHub_App_section_without_its_secret_names_the_missing_key(string build)
    {
        var result = await StartAsync(build, new() { ["GitHubApp__ClientId"] = "Iv23li-test", ["GitHubApp__Slug"] = "Not A Slug" });

        result.ShouldBeAToolError("GitHubApp:ClientSecret is required", "environment variable GitHubApp__ClientSecret", "GitHubApp:Slug must be the app's URL name");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task An_invalid_setting_names_the_key(string build)
    {
        var result = await StartAsync(build, new() { ["Broker__TokenLifetime"] = "2.00:00:00" });

        result.ShouldBeAToolError("Broker:TokenLifetime must be between");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task An_invalid_allowlist_names_the_file_the_entry_and_the_problem(string build)
    {
        var allowlist = Path.Combine(folder.Path, "broken.json");
        File.WriteAllText(allowlist, """{ "instances": [ { "id": "wiki", "redirectUris": ["http://wiki.example.com/cb"], "deliverAccessToken": false } ] }""");

        var result = await StartAsync(build, new() { ["Broker__AllowlistPath"] = allowlist });

        result.ShouldBeAToolError(allowlist, "instances[0] (\"wiki\"): redirectUris[0] must use https");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task An_unwritable_data_folder_names_the_folder_and_the_setting(string build)
    {
        // A folder below a plain file cannot be made, even by root (the tests run as root in CI, where modes do not bind).
        var file = Path.Combine(folder.Path, "not-a-folder");
        File.WriteAllText(file, "");
        var dataPath = Path.Combine(file, "data");

        var result = await StartAsync(build, new() { ["Broker__DataPath"] = dataPath });

        result.ShouldBeAToolError($"The data folder {dataPath} (Broker:DataPath) is not writable", "Broker__DataPath");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task A_port_in_use_names_the_address_and_how_to_choose_another(string build)
    {
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var address = $"http://127.0.0.1:{((IPEndPoint)occupant.LocalEndpoint).Port}";

        var result = await StartAsync(build, new() { ["Urls"] = address });

        result.ShouldBeAToolError($"Failed to bind to address {address}: address already in use", "Urls");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task Demo_mode_refuses_the_Production_environment_in_a_sentence(string build)
    {
        var result = await StartAsync(build, new() { ["ASPNETCORE_ENVIRONMENT"] = "Production" }, "--demo");

        result.ShouldBeAToolError("refuses to run in the Production environment", "ASPNETCORE_ENVIRONMENT=Development");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task Demo_mode_refuses_to_listen_beyond_loopback(string build)
    {
        var result = await StartAsync(build, new() { ["Urls"] = $"http://0.0.0.0:{LoopbackPort.Free()}" }, "--demo");

        result.ShouldBeAToolError("Demo mode runs on loopback only", "http://0.0.0.0:");
    }

    [Fact]
    public async Task At_Debug_log_level_the_stack_trace_is_shown_too()
    {
        var result = await StartAsync("dll", new() { ["GitHub__ClientId"] = "", ["Logging__LogLevel__Default"] = "Debug" });

        result.ExitCode.Should().Be(1);
        result.Error.Should().StartWith("OAuthBroker could not start:").And.Contain("OptionsValidationException").And.Contain("   at ");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task The_admin_commands_report_a_bad_setting_or_folder_the_same_way(string build)
    {
        var file = Path.Combine(folder.Path, "not-a-folder");
        File.WriteAllText(file, "");

        var badFolder = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "keys", "list"), Environment(new() { ["Broker__DataPath"] = Path.Combine(file, "data") }));
        var badSetting = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "keys", "list"), Environment(new() { ["Broker__TokenLifetime"] = "soon" }));

        badFolder.ShouldBeAToolError("OAuthBroker keys failed: The data folder", "Broker:DataPath");
        badSetting.ShouldBeAToolError("OAuthBroker keys failed:", "Broker:TokenLifetime");
    }

    private Task<CliResult> StartAsync(string build, Dictionary<string, string?> overrides, params string[] args) =>
        BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, args), Environment(overrides));

    /// <summary>A broker that would start: a GitHub app, a free port, its own data folder and allowlist; then the override.</summary>
    private Dictionary<string, string?> Environment(Dictionary<string, string?> overrides)
    {
        var allowlist = Path.Combine(folder.Path, "allowed-redirects.json");
        File.WriteAllText(allowlist, """{ "instances": [] }""");
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["GitHub__ClientId"] = "Ov23li-test",
            ["GitHub__ClientSecret"] = "test-secret",
            ["Urls"] = $"http://127.0.0.1:{LoopbackPort.Free()}",
            ["Broker__AllowlistPath"] = allowlist,
            ["Broker__DataPath"] = Path.Combine(folder.Path, "data"),
            // Development generates its key-encryption key under the user's data folder: the test's own, not the home's.
            ["XDG_DATA_HOME"] = Path.Combine(folder.Path, "home-data"),
        };
        foreach (var (key, value) in overrides)
        {
            environment[key] = value;
        }

        return environment;
    }
}
