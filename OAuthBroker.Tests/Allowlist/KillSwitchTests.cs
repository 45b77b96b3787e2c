using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Allowlist;

/// <summary>
/// <c>"disabled": true</c> on an entry: new logins, logins already at GitHub and the broker JWTs the instance holds are
/// all refused as soon as the broker has the change, and the audit says who pulled the switch.
/// </summary>
public sealed partial class KillSwitchTests : FakeGitHubTest
{
    private const string ApiToken = "test-admin-token-0123456789abcdef0123456789";
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        GitHub.User = GitHub.User with { Login = "octo-admin" };
        broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = "https://broker.test",
            ["Admin:ApiToken"] = ApiToken,
            ["Admin:GitHubLogins:0"] = "octo-admin",
        });
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task Disabling_from_the_command_line_refuses_new_logins_logins_at_GitHub_and_tokens_already_issued_then_enabling_restores_them()
    {
        using var browser = broker.NewBrowser("https://localhost");
        var issued = (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token;
        (await UserMeAsync(issued)).StatusCode.Should().Be(HttpStatusCode.OK);
        var atGitHub = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);
        var exchangesBefore = GitHub.TokenCallCount;

        // As an admin runs it: the real executable in its own process.
        var disable = await AdminCli.RunProcessAsync(broker, "allowlist", "disable", "trackeep-home");

        disable.ExitCode.Should().Be(0, disable.Error);
        disable.Output.Should().Contain("Disabled instance 'trackeep-home'");
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () =>
        {
            using var start = await browser.StartAsync(StandardInstances.TrackeepCallback);
            return start.StatusCode == HttpStatusCode.Forbidden;
        })).Should().BeTrue("the change must take effect within 2 seconds");

        using (var start = await browser.StartAsync(StandardInstances.TrackeepCallback))
        {
            start.Headers.Location.Should().BeNull("no redirect, neither to GitHub nor to the instance");
            (await start.Content.ReadAsStringAsync()).Should().Contain("disabled by the broker");
        }

        var finished = await browser.ReturnFromGitHubAsync(atGitHub);
        finished.Response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        finished.Query.Should().NotContainKey("token");
        GitHub.TokenCallCount.Should().Be(exchangesBefore, "the code of a login at GitHub when the switch was pulled is never exchanged");

        using (var refused = await UserMeAsync(issued))
        {
            refused.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
            (await refused.Content.ReadAsStringAsync()).Should().Contain("disabled");
            refused.Headers.WwwAuthenticate.ToString().Should().Contain("invalid_token");
        }

        var admin = await AuditAsync("kind=admin");
        var change = admin.Single(e => (string?)e["action"] == "disable");
        ((string?)change["actor"]).Should().Be($"cli:{Environment.UserName}");
        ((string?)change["instanceId"]).Should().Be("trackeep-home");
        ((bool?)change["after"]!["disabled"]).Should().BeTrue();
        var refusals = await AuditAsync("instance=trackeep-home&outcome=refused");
        refusals.Select(e => (string?)e["reason"]).Should().Contain(reason => reason!.Contains("disabled"));
        (await AdminCli.RunAsync(broker, "allowlist", "list")).Output.Should().MatchRegex("trackeep-home .* DISABLED");

        var enable = await AdminCli.RunAsync(broker, "allowlist", "enable", "trackeep-home");

        enable.ExitCode.Should().Be(0, enable.Error);
        (await broker.ReadStoredAllowlistAsync()).Should().NotContain("\"disabled\"");
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () =>
        {
            using var start = await browser.StartAsync(StandardInstances.TrackeepCallback);
            return start.StatusCode == HttpStatusCode.Redirect;
        })).Should().BeTrue();
        (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token");
        (await UserMeAsync(issued)).StatusCode.Should().Be(HttpStatusCode.OK, "a token still in its lifetime is accepted again");
    }

    [Fact]
    public async Task The_admin_API_disables_and_enables_without_If_Match_checks_it_when_given_and_audits_the_token()
    {
        var api = Api();

        using (var disabled = await api.PostAsync("/admin/api/instances/login-only/disable", null))
        {
            disabled.StatusCode.Should().Be(HttpStatusCode.OK, await disabled.Content.ReadAsStringAsync());
            ((bool?)(await disabled.Content.ReadFromJsonAsync<JsonObject>())!["disabled"]).Should().BeTrue();
        }

        using (var stale = new HttpRequestMessage(HttpMethod.Post, "/admin/api/instances/login-only/enable"))
        {
            stale.Headers.TryAddWithoutValidation("If-Match", "\"0000\"");
            (await api.SendAsync(stale)).StatusCode.Should().Be(HttpStatusCode.PreconditionFailed);
        }

        (await broker.ReadStoredAllowlistAsync()).Should().Contain("\"disabled\": true");
        (await api.PostAsync("/admin/api/instances/no-such-instance/disable", null)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        using (var enabled = await api.PostAsync("/admin/api/instances/login-only/enable", null))
        {
            enabled.StatusCode.Should().Be(HttpStatusCode.OK);
            (await enabled.Content.ReadFromJsonAsync<JsonObject>())!.ContainsKey("disabled").Should().BeFalse();
        }

        var changes = await AuditAsync("kind=admin");
        changes.Select(e => ((string?)e["action"], (string?)e["actor"], (string?)e["instanceId"]))
            .Should().Contain([("disable", "api-token", "login-only"), ("enable", "api-token", "login-only")]);
    }

    [Fact]
    public async Task The_admin_page_offers_the_switch_and_an_edit_of_a_disabled_instance_keeps_it_disabled()
    {
        using var admin = await SignedInAdminAsync();

        var page = await admin.Client.GetStringAsync("/admin");
        using (var disabled = await SubmitAsync(admin, page, "/admin/instances/trackeep-home/disable"))
        {
            disabled.StatusCode.Should().Be(HttpStatusCode.SeeOther, await disabled.Content.ReadAsStringAsync());
        }

        page = await admin.Client.GetStringAsync("/admin");
        page.Should().Contain("Disabled</strong>").And.Contain("Enable trackeep-home").And.NotContain("Disable trackeep-home");

        // Save the edit form unchanged: the entry stays disabled.
        var edit = await admin.Client.GetStringAsync("/admin/instances/trackeep-home");
        using (var saved = await SubmitAsync(admin, edit, "/admin/instances/trackeep-home"))
        {
            saved.StatusCode.Should().Be(HttpStatusCode.SeeOther, await saved.Content.ReadAsStringAsync());
        }

        (await broker.ReadStoredAllowlistAsync()).Should().Contain("\"disabled\": true");
        var changes = await AuditAsync("kind=admin");
        changes.Select(e => ((string?)e["action"], (string?)e["actor"])).Should().Contain([("disable", "octo-admin"), ("replace", "octo-admin")]);

        page = await admin.Client.GetStringAsync("/admin");
        using (var enabled = await SubmitAsync(admin, page, "/admin/instances/trackeep-home/enable"))
        {
            enabled.StatusCode.Should().Be(HttpStatusCode.SeeOther);
        }

        (await broker.ReadStoredAllowlistAsync()).Should().NotContain("\"disabled\"");
    }

    private async Task<Browser> SignedInAdminAsync()
    {
        var browser = broker.NewBrowser("https://localhost");
        using var start = await browser.Client.GetAsync("/admin/login");
        var callback = await Browser.ApproveAtGitHubAsync(start.Headers.Location!);
        using var signedIn = await browser.Client.GetAsync(new Uri(callback).PathAndQuery);
        signedIn.StatusCode.Should().Be(HttpStatusCode.OK, await signedIn.Content.ReadAsStringAsync());
        return browser;
    }

    /// <summary>Posts the page's form whose action is <paramref name="action"/> with its hidden fields and visible values, as a browser would.</summary>
    private static async Task<HttpResponseMessage> SubmitAsync(Browser browser, string html, string action)
    {
        var match = FormPattern().Matches(html).FirstOrDefault(m => WebUtility.HtmlDecode(m.Groups["action"].Value) == action);
        match.Should().NotBeNull($"the page has a form posting to {action}: {html}");
        var fields = new List<KeyValuePair<string, string>>();
        foreach (Match input in InputPattern().Matches(match!.Groups["body"].Value))
        {
            var type = input.Groups["type"].Value;
            if (type is "checkbox" or "radio" && !input.Value.Contains(" checked", StringComparison.Ordinal))
            {
                continue;
            }

            fields.Add(new(WebUtility.HtmlDecode(input.Groups["name"].Value), WebUtility.HtmlDecode(input.Groups["value"].Value)));
        }

        foreach (Match area in TextAreaPattern().Matches(match.Groups["body"].Value))
        {
            fields.Add(new(area.Groups["name"].Value, WebUtility.HtmlDecode(area.Groups["value"].Value)));
        }

        using var content = new FormUrlEncodedContent(fields);
        return await browser.Client.PostAsync(action, content);
    }

    private async Task<HttpResponseMessage> UserMeAsync(string jwt)
    {
        using var client = broker.CreateClient(new() { BaseAddress = new Uri("https://localhost") });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        request.Headers.Authorization = new("Bearer", jwt);
        return await client.SendAsync(request);
    }

    private async Task<List<JsonObject>> AuditAsync(string query) =>
        [.. (await Api().GetFromJsonAsync<JsonObject>("/admin/api/audit?" + query))!["events"]!.AsArray().OfType<JsonObject>()];

    private HttpClient Api()
    {
        var client = broker.CreateClient(new() { AllowAutoRedirect = false, BaseAddress = new Uri("https://localhost") });
        client.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);
        return client;
    }

    [GeneratedRegex("<form method=\"post\" action=\"(?<action>[^\"]*)\"[^>]*>(?<body>.*?)</form>", RegexOptions.Singleline)]
    private static partial Regex FormPattern();

    [GeneratedRegex("<input(?=[^>]*name=\"(?<name>[^\"]*)\")(?=(?:[^>]*type=\"(?<type>[^\"]*)\")?)(?=(?:[^>]*value=\"(?<value>[^\"]*)\")?)[^>]*>")]
    private static partial Regex InputPattern();

    [GeneratedRegex("<textarea name=\"(?<name>[^\"]*)\"[^>]*>(?<value>.*?)</textarea>", RegexOptions.Singleline)]
    private static partial Regex TextAreaPattern();
}
