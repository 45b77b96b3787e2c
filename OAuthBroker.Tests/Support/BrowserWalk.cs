using System.Text.Json;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// One walk of a script in OAuthBroker.Tests/browser (headless Chromium): its JSON line, with the console errors and CSP
/// violations it met. A walk that failed or met any problem fails the test with what it saw.
/// </summary>
public sealed class BrowserWalk(JsonElement root)
{
    public JsonElement Root { get; } = root;

    public string FinalUrl => Root.GetProperty("finalUrl").GetString()!;

    public static async Task<BrowserWalk> RunAsync(string script, IDictionary<string, string> environment)
    {
        var (exit, output, error) = await NodeProcess.RunAsync("OAuthBroker.Tests/browser", script, environment, TimeSpan.FromMinutes(2));
        var lastLine = output.Trim().Split('\n')[^1];
        lastLine.Should().StartWith("{", $"{script} prints its result as JSON (exit {exit}): {error}");
        var root = JsonDocument.Parse(lastLine).RootElement.Clone();
        var problems = root.GetProperty("problems").EnumerateArray().Select(problem => problem.GetString()).ToList();
        root.TryGetProperty("failed", out var failed).Should().BeFalse($"{script} failed at {root.GetProperty("finalUrl")}: {(root.TryGetProperty("failed", out var f) ? f : default)}; problems: {string.Join(" | ", problems)}");
        problems.Should().BeEmpty($"{script} must meet no console error or CSP violation");
        exit.Should().Be(0, error);
        _ = failed;
        return new BrowserWalk(root);
    }
}
