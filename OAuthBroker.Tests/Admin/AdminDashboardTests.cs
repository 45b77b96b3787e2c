using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Admin;

/// <summary>
/// The overview at the top of /admin: sign-ins per instance over 24 hours and 7 days as server-drawn SVG bars,
/// refusals by reason, the webhook outbox; from audit rows seeded at known times, on both database backends.
/// </summary>
public sealed partial class AdminDashboardTests : FakeGitHubTest
{
    private const string ApiToken = "dashboard-admin-token-0123456789abcdef0123";

    [Fact]
    public async Task The_overview_charts_each_instances_sign_ins_per_hour_and_day_and_lists_refusals_by_reason()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Admin:ApiToken"] = ApiToken });
        using var client = broker.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiToken);
        await SeedAsync(broker);

        using var response = await client.GetAsync("/admin");
        var page = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.Should().BeTrue(broker.Logs.AllText);

        var hours = Bars(page, "chart-24h-trackeep-home");
        hours.Should().HaveCount(24, "one bar per hour, the current one last");
        hours[^1].Should().Be(1);
        hours[^3].Should().Be(3, "three sign-ins two hours ago");
        hours.Sum().Should().Be(4, "the sign-in of three days ago is outside the 24 hours");
        var days = Bars(page, "chart-7d-trackeep-home");
        days.Should().HaveCount(7);
        days[^4].Should().Be(2, "two sign-ins three days ago");
        days.Sum().Should().Be(6);
        Bars(page, "chart-24h-legacy-rsa").Should().HaveCount(24).And.OnlyContain(count => count == 0);
        page.Should().Contain("<td>no such redirect_uri</td><td>5</td>", "refusal rows count many, by reason");
        Regex.Count(page, "<svg class=\"chart\"").Should().Be(2 * System.Text.Json.Nodes.JsonNode.Parse(Instances.Json)!["instances"]!.AsArray().Count, "two charts for every instance");
    }

    [Fact]
    public async Task Chromium_shows_the_overview_with_the_seeded_bars_under_the_CSP()
    {
        await using var broker = AdminBrowserTests.StartWithAdmin(GitHub, Folder, Instances.Json);
        await SeedAsync(broker);
        var screenshot = Path.Combine(Folder.Path, "admin-dashboard.png");

        var walk = await BrowserWalk.RunAsync("admin-dashboard.mjs", new Dictionary<string, string> { ["BROKER_URL"] = broker.PublicUrl, ["SCREENSHOT"] = screenshot });

        var charts = walk.Root.GetProperty("charts").EnumerateArray().ToDictionary(chart => chart.GetProperty("id").GetString()!, chart => chart.GetProperty("counts").EnumerateArray().Select(count => count.GetInt64()).ToArray());
        charts["chart-24h-trackeep-home"].Should().HaveCount(24).And.Subject.Sum().Should().Be(4);
        charts["chart-7d-trackeep-home"].Should().HaveCount(7).And.Subject.Sum().Should().Be(6);
        walk.Root.GetProperty("charts").EnumerateArray().Should().OnlyContain(chart => chart.GetProperty("width").GetDouble() > 0, "the bars are drawn");
        walk.Root.GetProperty("refusals").EnumerateArray().First().EnumerateArray().Select(cell => cell.GetString()).Should().Equal("no such redirect_uri", "5");
        walk.Root.GetProperty("instances").EnumerateArray().Select(cell => cell.GetString()).Should().Contain("trackeep-home");
        File.Exists(screenshot).Should().BeTrue();
        File.Copy(screenshot, Path.Combine(Path.GetTempPath(), "oauthbroker-admin-dashboard.png"), overwrite: true);
    }

    /// <summary>Audit rows at known times: trackeep-home signed in now, three times two hours ago and twice three days ago; five refusals in one counted row.</summary>
    private static async Task SeedAsync(BrokerFactory broker)
    {
        var now = DateTimeOffset.UtcNow;
        var rows = new List<(DateTimeOffset At, string Action, string? Reason, int Count)>
        {
            (now, "succeeded", null, 1),
            (now.AddHours(-2), "succeeded", null, 1), (now.AddHours(-2), "succeeded", null, 1), (now.AddHours(-2), "succeeded", null, 1),
            (now.AddDays(-3), "succeeded", null, 1), (now.AddDays(-3), "succeeded", null, 1),
            (now.AddDays(-1), "refused", "no such redirect_uri", 5),
            (now.AddDays(-9), "succeeded", null, 1),
        };
        foreach (var (at, action, reason, count) in rows)
        {
            await broker.ValueAsync(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"INSERT INTO audit_events (at, kind, instance_id, actor, action, reason, count) VALUES ({at.ToUnixTimeMilliseconds()}, 'login', 'trackeep-home', 'octocat', '{action}', {(reason is null ? "NULL" : $"'{reason}'")}, {count})"));
        }
    }

    private static long[] Bars(string page, string chartId)
    {
        var chart = Regex.Match(page, $"<svg class=\"chart\" id=\"{chartId}\".*?</svg>", RegexOptions.Singleline);
        chart.Success.Should().BeTrue($"the page has the chart {chartId}");
        return [.. DataCount().Matches(chart.Value).Select(match => long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))];
    }

    [GeneratedRegex("data-count=\"(\\d+)\"")]
    private static partial Regex DataCount();
}
