using System.Runtime.Versioning;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// Whoever reads both the key ring and the database can sign tokens for every instance: the broker makes them its
/// user's alone, and will not start on ones that other users can read.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class DataFolderTests : FakeGitHubTest
{
    private const UnixFileMode OwnerOnlyFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public async Task A_new_data_folder_key_ring_and_database_are_the_owners_alone()
    {
        await using var broker = await NativeBroker.StartAsync(GitHub, Folder.Path, Instances.Json);
        var data = Path.Combine(Folder.Path, "data");

        File.GetUnixFileMode(data).Should().Be(OwnerOnlyFolder);
        File.GetUnixFileMode(Path.Combine(data, "keys")).Should().Be(OwnerOnlyFolder);
        foreach (var file in Directory.GetFiles(data, "broker.db*").Concat(Directory.GetFiles(Path.Combine(data, "keys"))))
        {
            File.GetUnixFileMode(file).Should().Be(OwnerOnlyFile, file);
        }

        Directory.GetFiles(data, "broker.db*").Should().Contain(file => file.EndsWith("-wal", StringComparison.Ordinal), "WAL mode is on, and its file is covered too");
    }

    [Theory]
    [InlineData("dll", "broker.db")]
    [InlineData("dll", "keys")]
    [InlineData("native", "broker.db")]
    [InlineData("native", "keys")]
    public async Task A_key_ring_or_database_that_others_can_read_stops_start_up_with_the_chmod_to_run(string build, string exposed)
    {
        var data = Path.Combine(Folder.Path, "data");
        var environment = BrokerEnvironment.For(GitHub, Folder.Path, Instances.Json);
        (await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "keys", "list"), environment)).ExitCode.Should().Be(0, "a first run makes the folder");
        var path = Path.Combine(data, exposed);
        File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build), environment);

        result.ShouldBeAToolError($"{path} can be read by other users", $"chmod 700 '{Path.Combine(data, "keys")}'", $"chmod 600 '{Path.Combine(data, "broker.db")}'*");
    }
}
