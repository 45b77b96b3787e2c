using System.Net;
using System.Text.Json;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Observability;

/// <summary>
/// <c>Logging__Console__FormatterName=json</c>, as the README documents for log collectors: one JSON object per line,
/// with the event id, level, category and message, on the native executable too; and still no secret in any of it.
/// </summary>
public sealed class JsonConsoleLogTests : FakeGitHubTest
{
    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task Json_console_logs_are_one_object_per_line_with_the_login_events_and_no_secret(string build)
    {
        var environment = BrokerEnvironment.For(GitHub, Folder.Path, Instances.Json);
        var url = environment["Urls"]!;
        environment["Logging__Console__FormatterName"] = "json";

        string output;
        await using (var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), url, environment))
        {
            var (callback, cookie) = await HttpLogin.StartAndApproveAsync(url);
            using var back = await HttpLogin.ReturnAsync(url, callback, cookie);
            back.StatusCode.Should().Be(HttpStatusCode.Redirect);
            back.Headers.Location!.Query.Should().Contain("token=");
            (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), () => Task.FromResult(broker.Output.Contains("Login completed", StringComparison.Ordinal)))).Should().BeTrue();
            output = broker.Output;
        }

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines.Should().NotBeEmpty();
        var events = lines.Select(line => JsonDocument.Parse(line).RootElement).ToList();
        string[] members = ["Timestamp", "EventId", "LogLevel", "Category", "Message"];
        events.Select(e => members.All(member => e.TryGetProperty(member, out var _))).Should().AllBeEquivalentTo(true);
        foreach (var e in events)
        {
            // ISO 8601 in UTC, to the millisecond, within the run; and the message once, not again inside State.
            e.GetProperty("Timestamp").GetString().Should().MatchRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$");
            DateTimeOffset.Parse(e.GetProperty("Timestamp").GetString()!, System.Globalization.CultureInfo.InvariantCulture).Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
            if (e.TryGetProperty("State", out var state))
            {
                state.TryGetProperty("Message", out _).Should().BeFalse(e.ToString());
                state.TryGetProperty("{OriginalFormat}", out _).Should().BeFalse(e.ToString());
            }
        }

        events.Where(e => e.TryGetProperty("State", out var state) && state.TryGetProperty("InstanceId", out var _)).Should().NotBeEmpty("the events' fields are kept, once");
        events.Should().Contain(e => e.GetProperty("Message").GetString()!.StartsWith("Login completed", StringComparison.Ordinal));
        foreach (var secret in GitHub.Secrets)
        {
            output.Should().NotContain(secret);
        }
    }
}
