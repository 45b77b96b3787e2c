using OAuthBroker.Health;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Health;

/// <summary>
/// <c>health</c>, the Docker image's HEALTHCHECK (the image has no curl): exit 0 while the broker on the configured
/// address is ready, 1 when it is not reachable; on the JIT build and the native executable.
/// </summary>
public sealed class HealthCommandTests : FakeGitHubTest
{
    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task Health_exits_0_while_the_broker_is_ready_and_1_once_it_is_gone(string build)
    {
        var environment = BrokerEnvironment.For(GitHub, Folder.Path, Instances.Json);
        var url = environment["Urls"]!;

        CliResult whileRunning;
        await using (await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), url, environment))
        {
            whileRunning = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "health"), environment);
        }

        var afterwards = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "health"), environment);

        whileRunning.ExitCode.Should().Be(0, whileRunning.Output + whileRunning.Error);
        whileRunning.Output.Should().Contain($"{url}/readyz: 200 ready");
        afterwards.ExitCode.Should().Be(1);
        afterwards.Output.Should().Contain("not reachable");
    }

    [Theory]
    [InlineData("http://+:8080", "http://127.0.0.1:8080/readyz")]
    [InlineData("http://*:8080;http://127.0.0.1:9000", "http://127.0.0.1:8080/readyz")]
    [InlineData("http://0.0.0.0:8081", "http://127.0.0.1:8081/readyz")]
    [InlineData("http://[::]:8082", "http://127.0.0.1:8082/readyz")]
    [InlineData("http://127.0.0.1:5080", "http://127.0.0.1:5080/readyz")]
    [InlineData(null, "http://127.0.0.1:5080/readyz")]
    public void A_wildcard_listen_address_is_asked_on_loopback(string? urls, string expected) =>
        HealthCommand.ReadinessUrl(urls).ToString().Should().Be(expected);
}
