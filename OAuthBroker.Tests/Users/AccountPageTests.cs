using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Users;

/// <summary>
/// /account: a user signs in through GitHub, sees the instances they signed in to through the broker, and disconnects
/// from all of them by revoking their authorization of one of the broker's apps at GitHub; the broker holds no token
/// for it, and what the user did is audited.
/// </summary>
public sealed partial class AccountPageTests : FakeGitHubTest
{
    private const string LegacyCallback = "https://legacy.example.com/oauth/done";
    private const string TenantCallback = "https://a.tenants.example.net/auth/callback";
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var document = JsonNode.Parse(Instances.Json)!;
        var tenants = document["instances"]!.AsArray().Single(entry => (string?)entry!["id"] == "tenants")!.AsObject();
        tenants["provider"] = "github-app";
        tenants.Remove("scopes");
        broker = new BrokerFactory(GitHub, Folder, document.ToJsonString());
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task A_user_sees_where_they_signed_in_and_disconnecting_revokes_every_token_of_that_app_at_GitHub_and_no_other()
    {
        var instanceTokens = new List<(string Instance, string Token)>();
        using (var instances = broker.NewBrowser())
        {
            foreach (var (callback, id) in new[] { (StandardInstances.TrackeepCallback, "trackeep-home"), (StandardInstances.TrackeepCallback, "trackeep-home"), (LegacyCallback, "legacy-rsa"), (TenantCallback, "tenants") })
            {
                var jwt = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken((await instances.LoginAsync(callback)).Token);
                instanceTokens.Add((id, Instances.KeyFor(id).Decrypt(jwt.GetPayloadValue<string>("access_token"))));
            }
        }

        using var browser = broker.NewBrowser();
        var anonymous = await browser.Client.GetStringAsync("/account");
        anonymous.Should().Contain("id=\"sign-in\"").And.NotContain("trackeep-home");

        await SignInAsync(browser);

        GitHub.RevokeCallCount.Should().Be(1, "the sign-in's own token is ended as soon as it has said who signed in");
        GitHub.LiveTokenCount(FakeGitHub.ClientId).Should().Be(3, "the three OAuth App tokens the instances hold");
        var page = await browser.Client.GetStringAsync("/account");
        page.Should().Contain($"id=\"account-login\">{GitHub.User.Login}<");
        Rows(page).Should().BeEquivalentTo([
            "tenants|the broker's GitHub App|(the app's permissions)|1",
            "legacy-rsa|the broker's GitHub OAuth App|read:user user:email|1",
            "trackeep-home|the broker's GitHub OAuth App|read:user user:email|2",
        ]);

        var disconnected = await DisconnectAsync(browser, page, "oauth-app");

        disconnected.Should().Contain("id=\"disconnected\"");
        GitHub.GrantRevokeCallCount.Should().Be(1);
        instanceTokens.Where(issued => issued.Instance != "tenants").Should().OnlyContain(issued => !GitHub.IsLive(issued.Token), "the OAuth App grant is gone, with every token in it");
        GitHub.IsLive(instanceTokens.Single(issued => issued.Instance == "tenants").Token).Should().BeTrue("the GitHub App's authorization is another grant");
        Rows(await browser.Client.GetStringAsync("/account")).Should().Equal("tenants|the broker's GitHub App|(the app's permissions)|1");
        (await broker.ScalarAsync($"SELECT COUNT(*) FROM audit_events WHERE kind = 'account' AND action = 'grant_revoked' AND actor = '{GitHub.User.Login}' AND reason = 'oauth-app'")).Should().Be(1);

        (await DisconnectAsync(browser, await browser.Client.GetStringAsync("/account"), "github-app")).Should().Contain("id=\"disconnected\"");
        GitHub.IsLive(instanceTokens.Single(issued => issued.Instance == "tenants").Token).Should().BeFalse();
        SecretScan.AssertAbsent(GitHub.Secrets, broker.Logs.AllText, broker.DataPath, TestDatabase.PostgresDatabaseFor(Folder.Path));
    }

    [Fact]
    public async Task A_disconnect_without_the_form_token_or_after_signing_out_revokes_nothing()
    {
        using (var instances = broker.NewBrowser())
        {
            await instances.LoginAsync(StandardInstances.TrackeepCallback);
        }

        using var browser = broker.NewBrowser();
        await SignInAsync(browser);
        var page = await browser.Client.GetStringAsync("/account");

        using (var forged = await browser.Client.PostAsync("/account/disconnect", new FormUrlEncodedContent(new Dictionary<string, string> { ["provider"] = "oauth-app" })))
        {
            forged.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        }

        var (field, value) = FormToken(page, "/account/sign-out");
        using (var signOut = await browser.Client.PostAsync("/account/sign-out", new FormUrlEncodedContent(new Dictionary<string, string> { [field] = value })))
        {
            signOut.StatusCode.Should().Be(HttpStatusCode.Redirect);
        }

        (await browser.Client.GetStringAsync("/account")).Should().Contain("id=\"sign-in\"");
        var (disconnectField, disconnectValue) = FormToken(page, "/account/disconnect");
        using (var late = await browser.Client.PostAsync("/account/disconnect", new FormUrlEncodedContent(new Dictionary<string, string> { [disconnectField] = disconnectValue, ["provider"] = "oauth-app" })))
        {
            late.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }

        GitHub.GrantRevokeCallCount.Should().Be(0);
        GitHub.AuthorizeRequests.Should().HaveCount(2, "the instance's login and the page's sign-in; no disconnect reached GitHub");
    }

    [Fact]
    public async Task Nearing_GitHubs_ten_tokens_for_one_app_and_scope_set_is_shown_as_a_warning()
    {
        using (var instances = broker.NewBrowser())
        {
            for (var i = 0; i < 7; i++)
            {
                await instances.LoginAsync(i % 2 == 0 ? StandardInstances.TrackeepCallback : LegacyCallback);
            }
        }

        using var browser = broker.NewBrowser();
        await SignInAsync(browser);
        (await browser.Client.GetStringAsync("/account")).Should().NotContain("class=\"warning\"");

        using (var instances = broker.NewBrowser())
        {
            await instances.LoginAsync(LegacyCallback);
        }

        System.Net.WebUtility.HtmlDecode(await browser.Client.GetStringAsync("/account")).Should().Contain("class=\"warning\"").And.Contain("signed in 8 times through the broker's GitHub OAuth App");
    }

    /// <summary>Signs in on /account through the fake GitHub; the browser then holds the page's session.</summary>
    private static async Task SignInAsync(Browser browser)
    {
        using var start = await browser.Client.GetAsync("/account/sign-in");
        start.StatusCode.Should().Be(HttpStatusCode.Redirect, await start.Content.ReadAsStringAsync());
        var back = await browser.ReturnFromGitHubAsync(await Browser.ApproveAtGitHubAsync(start.Headers.Location!));
        back.Response.StatusCode.Should().Be(HttpStatusCode.Redirect, await back.Response.Content.ReadAsStringAsync());
        back.Location!.ToString().Should().EndWith("/account");
    }

    private static async Task<string> DisconnectAsync(Browser browser, string page, string provider)
    {
        var (field, value) = FormToken(page, "/account/disconnect");
        using var post = await browser.Client.PostAsync("/account/disconnect", new FormUrlEncodedContent(new Dictionary<string, string> { [field] = value, ["provider"] = provider }));
        post.StatusCode.Should().Be(HttpStatusCode.Redirect, await post.Content.ReadAsStringAsync());
        var back = await browser.ReturnFromGitHubAsync(await Browser.ApproveAtGitHubAsync(post.Headers.Location!));
        back.Response.StatusCode.Should().Be(HttpStatusCode.OK);
        return await back.Response.Content.ReadAsStringAsync();
    }

    private static (string Field, string Value) FormToken(string page, string action)
    {
        var match = new Regex($"<form method=\"post\" action=\"{Regex.Escape(action)}\"><input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]+)\">").Match(page);
        match.Success.Should().BeTrue($"the page has a form for {action}");
        return (match.Groups[1].Value, System.Net.WebUtility.HtmlDecode(match.Groups[2].Value));
    }

    /// <summary>The instance table's rows as "instance|app|scope|sign-ins".</summary>
    private static List<string> Rows(string page) =>
        [.. RowPattern().Matches(page).Select(match => string.Join('|', match.Groups[1].Value, System.Net.WebUtility.HtmlDecode(match.Groups[2].Value), System.Net.WebUtility.HtmlDecode(match.Groups[3].Value), match.Groups[4].Value))];

    [GeneratedRegex("<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td>([0-9]+)</td>")]
    private static partial Regex RowPattern();
}
