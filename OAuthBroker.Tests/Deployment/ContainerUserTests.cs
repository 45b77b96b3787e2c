using System.Text.RegularExpressions;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Deployment;

/// <summary>
/// The deployment recipes as the image runs them, without a container engine (none runs on these machines): the
/// recipes' own shell commands run as root in an empty folder, then the published executable as the image's user
/// (uid and gid 1654, through setpriv) against what they made. A Compose file secret keeps the host's owner and mode,
/// and a bind mount hides the image's chown, which is how the recipe once made a key its broker could not read.
/// </summary>
public sealed partial class ContainerUserTests : IDisposable
{
    private const string AppUser = "1654";
    private readonly TempDirectory folder = new();

    public void Dispose() => folder.Dispose();

    [Fact]
    public async Task The_compose_recipes_secret_and_the_docker_run_recipes_config_serve_the_images_user()
    {
        Environment.UserName.Should().Be("root", "the recipes' chown runs as root, as the test command runs on CI");
        // The user 1654 must reach the folder; the recipe runs at the repository root, where allowed-redirects.json is.
        await RunAsRootAsync("chmod 755 .");
        File.Copy(Path.Combine(NodeProcess.RepositoryRoot, "allowed-redirects.json"), Path.Combine(folder.Path, "allowed-redirects.json"));
        var compose = Setup(Readme.ShellBlock("### N replicas (PostgreSQL)", "key-encryption-key", "docs/operations.md"));
        var dockerRun = Setup(Readme.ShellBlock("## Docker", "docker run", "docs/operations.md"));
        await RunAsRootAsync(compose.Replace("cp allowed-redirects.json config/", "true", StringComparison.Ordinal) + "\n" + dockerRun);
        // The image's /data (a named volume takes it over): made by the Dockerfile, owned by app.
        await RunAsRootAsync($"install -d -o {AppUser} -g {AppUser} -m 700 data");
        var port = LoopbackPort.Free();
        var environment = new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Urls"] = $"http://127.0.0.1:{port}",
            ["Broker__PublicUrl"] = "https://oauth.example.com",
            ["Broker__DataPath"] = Path.Combine(folder.Path, "data"),
            ["Broker__AllowlistPath"] = Path.Combine(folder.Path, "config", "allowed-redirects.json"),
            ["Broker__KeyEncryptionKeyFile"] = Path.Combine(folder.Path, "key-encryption-key"),
            ["GitHub__ClientId"] = "Ov23liContainer",
            ["GitHub__ClientSecret"] = "container-client-secret-0123",
        };

        await using (var broker = await BrokerProcess.StartReadyAsync(AsAppUser(), $"http://127.0.0.1:{port}", environment, workingDirectory: folder.Path))
        {
            var edit = await BrokerProcess.RunToExitAsync(AsAppUser("allowlist", "add", "--id", "in-container", "--redirect", "https://app.example.com/cb", "--generate-secret"), environment, folder.Path);
            edit.ExitCode.Should().Be(0, edit.Output + edit.Error);
            (await File.ReadAllTextAsync(Path.Combine(folder.Path, "config", "allowed-redirects.json"))).Should().Contain("in-container");
            var health = await BrokerProcess.RunToExitAsync(AsAppUser("health"), environment, folder.Path);
            health.ExitCode.Should().Be(0, health.Output + health.Error);
        }

        // What the recipe once was: the key written by root, 0600, and not handed to the image's user.
        await RunAsRootAsync($"chown 0:0 key-encryption-key");
        var refused = await BrokerProcess.RunToExitAsync(AsAppUser(), environment, folder.Path);
        refused.ShouldBeAToolError("cannot be read");
    }

    [Fact]
    public void Compose_runs_the_images_user_reads_the_key_as_a_secret_and_trusts_only_its_proxy()
    {
        var compose = File.ReadAllText(Path.Combine(NodeProcess.RepositoryRoot, "compose.yaml"));
        var dockerfile = File.ReadAllText(Path.Combine(NodeProcess.RepositoryRoot, "Dockerfile"));

        dockerfile.Should().Contain("USER app").And.Contain("HEALTHCHECK").And.Contain("CMD [\"/app/OAuthBroker\", \"health\"]");
        dockerfile.Should().NotContain("COPY appsettings.json", "the build carries its defaults");
        compose.Should().Contain("Broker__KeyEncryptionKeyFile: /run/secrets/key-encryption-key").And.Contain("secrets:\n    - key-encryption-key");
        compose.Should().Contain("file: ./key-encryption-key").And.Contain("chown 1654:1654 key-encryption-key");
        compose.Should().Contain("- ./config:/config:ro", "the allowlist is only seeded from it");
        compose.Should().NotContain("user:", "the image's own non-root user runs the broker");
        var proxyAddress = ProxyAddress().Match(compose).Groups[1].Value;
        compose.Should().Contain($"Broker__TrustedProxies__0: {proxyAddress}", "only nginx's X-Forwarded-For is believed");
        compose.Should().Contain("Broker__Database: postgres");
    }

    /// <summary>A block's commands without the container engine's.</summary>
    private static string Setup(string block) =>
        string.Join('\n', block.Split('\n').Where(line => !line.TrimStart().StartsWith("docker ", StringComparison.Ordinal) && !line.TrimStart().StartsWith("-e ", StringComparison.Ordinal)));

    private async Task RunAsRootAsync(string script)
    {
        var result = await BrokerProcess.RunToExitAsync(new BrokerCommand("recipe", "bash", ["-euc", script]), new Dictionary<string, string?>(), folder.Path);
        result.ExitCode.Should().Be(0, $"{script}\n{result.Output}{result.Error}");
    }

    private static BrokerCommand AsAppUser(params string[] args) =>
        new("native as uid 1654", "setpriv", [$"--reuid={AppUser}", $"--regid={AppUser}", "--clear-groups", NativeBroker.ExecutablePath, .. args]);

    [GeneratedRegex(@"ipv4_address: (\S+)")]
    private static partial Regex ProxyAddress();
}
