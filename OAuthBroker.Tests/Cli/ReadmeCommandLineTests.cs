using System.Text.Json;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Cli;

/// <summary>
/// The README's *Command line* block, run line by line as written against a temporary data folder and allowlist, on
/// the JIT build and the native executable: each exits as the README promises (0, or 1 where its comment says so).
/// </summary>
public sealed class ReadmeCommandLineTests : IDisposable
{
    private readonly TempDirectory folder = new();

    public void Dispose() => folder.Dispose();

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task Every_command_in_the_README_runs_and_exits_as_promised(string build)
    {
        // No settings file: the commands take their defaults from the build, as in the Docker image.
        var allowlist = Path.Combine(folder.Path, "allowed-redirects.json");
        File.WriteAllText(allowlist, """{ "instances": [] }""");
        File.WriteAllText(Path.Combine(folder.Path, "wiki-public.jwk"), JsonSerializer.Serialize(InstanceKey.Rsa().PublicJwk));
        // As the README says: the commands get the key-encryption key the service gets.
        var environment = new Dictionary<string, string?> { ["Broker__KeyEncryptionKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) };
        var commands = Readme.Commands("## Command line", "docs/administration.md");
        commands.Should().NotBeEmpty().And.OnlyContain(command => command.Text.StartsWith("dotnet OAuthBroker.dll ", StringComparison.Ordinal));

        var results = new List<(ReadmeCommand Command, CliResult Result)>();
        foreach (var command in commands)
        {
            string[] args = [.. command.Words.Skip(2).Select(word => word == "[FILE]" ? allowlist : word)];
            results.Add((command, await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, args), environment, folder.Path)));
        }

        foreach (var (command, result) in results)
        {
            var promised = command.Comment.Contains("exits 1", StringComparison.Ordinal) ? 1 : 0;
            result.ExitCode.Should().Be(promised, $"`{command}` ({command.Comment}) printed:\n{result.Output}{result.Error}");
            (result.Output + result.Error).Should().NotContain("   at ", "no command answers with a stack trace");
        }

        Output("allowlist add --id lab").Should().Contain("it is not shown again").And.MatchRegex("\"k\":\\s*\"[A-Za-z0-9_-]{43}\"");
        Output("allowlist check https://wiki.example.com/auth/callback").Should().Contain("Accepted for instance 'team-wiki'");
        Output("allowlist check https://wiki.example.com/auth/callback/").Should().Contain("Refused").And.Contain("team-wiki");
        Output("allowlist validate").Should().StartWith("Valid: 2 instances");
        Output("keys rotate --now").Should().Contain("signs now");
        File.ReadAllText(allowlist).Should().Contain("\"status\"").And.Contain("\"lab\"").And.NotContain("team-wiki");

        string Output(string prefix) => results.Single(entry => entry.Command.Text == "dotnet OAuthBroker.dll " + prefix
            || entry.Command.Text.StartsWith("dotnet OAuthBroker.dll " + prefix + " ", StringComparison.Ordinal)).Result.Output;
    }
}
