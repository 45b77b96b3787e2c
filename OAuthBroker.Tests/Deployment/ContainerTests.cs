using System.Globalization;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Deployment;

/// <summary>
/// The published executable in a container, as the image runs it, with what this machine has: no Docker engine and
/// no registry for Microsoft's images, so podman (Debian's, with runc and the cgroupfs manager) runs a Debian
/// bookworm root file system made by debootstrap with the packages runtime-deps carries (libssl3, ca-certificates,
/// libicu72, tzdata, zlib1g). The container runs as uid 1654, the image's <c>app</c> user, with the executable at
/// /app (with the SQLite library published beside it), the data and config folders and the key-encryption key mounted as the recipes make them, and the image's
/// health check command.
/// </summary>
public sealed class ContainerTests : IDisposable
{
    private const string Image = "localhost/oauthbroker-runtime-deps:bookworm";
    private static readonly string RootFs = Path.Combine("/var/tmp", "oauthbroker-rootfs-bookworm");
    private readonly TempDirectory folder = new();
    private readonly string name = "oauthbroker-test-" + Guid.NewGuid().ToString("N")[..12];

    public void Dispose()
    {
        _ = Podman.RunAsync(folder, $"rm -f {name}").GetAwaiter().GetResult();
        folder.Dispose();
    }

    [Fact]
    public async Task The_native_executable_runs_in_a_runtime_deps_like_container_as_the_images_user_with_its_health_check()
    {
        await Podman.EnsureImageAsync(folder, Image, RootFs);
        var port = LoopbackPort.Free();
        // As the docker-run and compose recipes make them (docs/operations.md), as root on the host.
        await Podman.ShellAsync(folder, """
            chmod 755 .
            mkdir -p config data && cp "$REPO/allowed-redirects.json" config/ && chown -R 1654:1654 config data && chmod 700 data
            (umask 077 && openssl rand -base64 32 > key-encryption-key) && chown 1654:1654 key-encryption-key
            """);

        var run = await Podman.RunAsync(folder, string.Join(' ',
            $"run -d --name {name} --network host --user 1654:1654",
            $"-v {Path.GetDirectoryName(NativeBroker.ExecutablePath)}:/app:ro -v {folder.Path}/config:/config -v {folder.Path}/data:/data",
            $"-v {folder.Path}/key-encryption-key:/run/secrets/key-encryption-key:ro",
            $"-e ASPNETCORE_ENVIRONMENT=Production -e URLS=http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}",
            "-e Broker__DataPath=/data -e Broker__AllowlistPath=/config/allowed-redirects.json",
            "-e Broker__KeyEncryptionKeyFile=/run/secrets/key-encryption-key -e Broker__PublicUrl=https://oauth.example.com",
            "-e GitHub__ClientId=Ov23liContainer -e GitHub__ClientSecret=container-secret-0123456789",
            "--health-cmd /app/OAuthBroker\\ health --health-interval disable",
            $"{Image} /app/OAuthBroker"));
        run.ExitCode.Should().Be(0, run.Output + run.Error);

        await Readiness.WaitAsync($"http://127.0.0.1:{port}", TimeSpan.FromSeconds(30),
            () => Podman.RunAsync(folder, $"ps -a --filter name={name} --format {{{{.Status}}}}").GetAwaiter().GetResult().Output.Contains("Exited", StringComparison.Ordinal)
                ? "the container exited: " + Podman.RunAsync(folder, $"logs {name}").GetAwaiter().GetResult().Error
                : null);
        var health = await Podman.RunAsync(folder, $"healthcheck run {name}");
        health.ExitCode.Should().Be(0, "the image's HEALTHCHECK command answers ready: " + health.Output + health.Error + (await Podman.RunAsync(folder, $"logs {name}")).Error);
        var user = await Podman.RunAsync(folder, $"exec {name} id -u");
        user.Output.Trim().Should().Be("1654");
        var edit = await Podman.RunAsync(folder, $"exec {name} /app/OAuthBroker allowlist add --id in-container --redirect https://app.example.com/cb --generate-secret");
        edit.ExitCode.Should().Be(0, edit.Output + edit.Error);
        (await File.ReadAllTextAsync(Path.Combine(folder.Path, "config", "allowed-redirects.json"))).Should().Contain("in-container", "the container's user wrote the host's config folder");
        Directory.EnumerateFiles(Path.Combine(folder.Path, "data")).Should().Contain(file => file.EndsWith("broker.db", StringComparison.Ordinal));
    }
}

/// <summary>podman as this machine runs it: runc, the cgroupfs manager, no default ulimits (crun refuses the hybrid cgroups).</summary>
internal static class Podman
{
    private const string Configuration = """
        [containers]
        default_ulimits = []
        [engine]
        cgroup_manager = "cgroupfs"
        runtime = "runc"
        """;

    private static readonly SemaphoreSlim ImageLock = new(1, 1);

    public static async Task EnsureImageAsync(TempDirectory folder, string image, string rootFs)
    {
        await ImageLock.WaitAsync();
        try
        {
            if ((await RunAsync(folder, $"image exists {image}")).ExitCode == 0)
            {
                return;
            }

            // Made once per machine: a minimal Debian with what the runtime-deps image carries for a native .NET app.
            await ShellAsync(folder, $"""
                if [ ! -x {rootFs}/bin/sh ]; then
                  rm -rf {rootFs}.partial
                  debootstrap --variant=minbase --include=libssl3,ca-certificates,libicu72,tzdata,zlib1g bookworm {rootFs}.partial
                  mv {rootFs}.partial {rootFs}
                fi
                tar -C {rootFs} -c . | podman import - {image}
                """, TimeSpan.FromMinutes(15));
        }
        finally
        {
            ImageLock.Release();
        }
    }

    public static Task<CliResult> RunAsync(TempDirectory folder, string arguments) =>
        BrokerProcess.RunToExitAsync(new BrokerCommand("podman", "bash", ["-c", "podman " + arguments]), Environment(folder), folder.Path, TimeSpan.FromMinutes(2));

    public static async Task ShellAsync(TempDirectory folder, string script, TimeSpan? timeout = null)
    {
        var result = await BrokerProcess.RunToExitAsync(new BrokerCommand("sh", "bash", ["-euo", "pipefail", "-c", script]), Environment(folder), folder.Path, timeout ?? TimeSpan.FromMinutes(2));
        result.ExitCode.Should().Be(0, script + "\n" + result.Output + result.Error);
    }

    private static Dictionary<string, string?> Environment(TempDirectory folder)
    {
        var configuration = Path.Combine(folder.Path, "containers.conf");
        File.WriteAllText(configuration, Configuration);
        return new() { ["CONTAINERS_CONF"] = configuration, ["REPO"] = NodeProcess.RepositoryRoot };
    }
}
