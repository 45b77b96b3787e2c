using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tests.Tokens;
using OAuthBroker.Webhooks;

namespace OAuthBroker.Tests.Webhooks;

/// <summary>
/// GET /auth/github/install: the GitHub App's installation page and back, with every setup_action GitHub sends, with
/// and without user authorization during installation, and a spoofed installation_id.
/// </summary>
public sealed class InstallRelayTests : TokenLifecycleTest
{
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var document = JsonNode.Parse(Instances.Json)!;
        var trackeep = document["instances"]!.AsArray().OfType<JsonObject>().Single(entry => (string?)entry["id"] == "trackeep-home");
        trackeep["provider"] = "github-app";
        trackeep.Remove("scopes");
        Broker = new BrokerFactory(GitHub, Folder, document.ToJsonString());
        GitHub.AppCallbackUrl = Broker.PublicUrl.TrimEnd('/') + "/auth/github/callback";
    }

    [Fact]
    public async Task An_installation_with_user_authorization_returns_a_JWT_naming_the_verified_installation_and_records_its_owner()
    {
        using var browser = Broker.NewBrowser();
        using var start = await browser.Client.GetAsync(InstallUrl());

        start.StatusCode.Should().Be(HttpStatusCode.Redirect);
        start.Headers.Location!.AbsolutePath.Should().Be($"/apps/{FakeGitHub.AppSlug}/installations/new");
        var back = await Browser.ApproveAtGitHubAsync(start.Headers.Location);
        QueryHelpers.ParseQuery(new Uri(back).Query).Keys.Should().BeEquivalentTo(["code", "installation_id", "setup_action", "state"]);
        var outcome = await browser.ReturnFromGitHubAsync(back);

        outcome.Query["state"].Should().Be("install-state");
        var jwt = await VerifiedAsync(outcome.Query["token"]);
        jwt.GetPayloadValue<long>("installation_id").Should().Be(4242);
        jwt.GetPayloadValue<string>("setup_action").Should().Be("install");
        jwt.GetPayloadValue<string>("provider").Should().Be("github-app");
        GitHub.TokenRequests.Single().CodeVerifier.Should().BeNullOrEmpty("the installation page's code had no PKCE challenge");
        (await Store.FindInstallationInstancesAsync(4242, CancellationToken.None)).Should().Equal("trackeep-home");

        using var replay = await browser.Client.GetAsync(new Uri(back).PathAndQuery);
        replay.StatusCode.Should().Be(HttpStatusCode.BadRequest, "the relay's state is one-time, as a sign-in's");
    }

    [Fact]
    public async Task Without_user_authorization_during_installation_the_broker_signs_the_user_in_through_the_app_before_believing_the_installation()
    {
        GitHub.InstallRequestsUserAuthorization = false;
        GitHub.InstallSetupAction = "update";
        using var browser = Broker.NewBrowser();
        using var start = await browser.Client.GetAsync(InstallUrl());
        var back = await Browser.ApproveAtGitHubAsync(start.Headers.Location!);
        QueryHelpers.ParseQuery(new Uri(back).Query).Should().NotContainKey("code");

        var afterInstall = await browser.ReturnFromGitHubAsync(back);

        afterInstall.Response.StatusCode.Should().Be(HttpStatusCode.Redirect);
        afterInstall.Location!.AbsolutePath.Should().Be("/login/oauth/authorize");
        QueryHelpers.ParseQuery(afterInstall.Location.Query)["client_id"].ToString().Should().Be(FakeGitHub.AppClientId);
        QueryHelpers.ParseQuery(afterInstall.Location.Query)["code_challenge_method"].ToString().Should().Be("S256");
        var signedIn = await browser.ReturnFromGitHubAsync(await Browser.ApproveAtGitHubAsync(afterInstall.Location));
        var jwt = await VerifiedAsync(signedIn.Query["token"]);
        jwt.GetPayloadValue<long>("installation_id").Should().Be(4242);
        jwt.GetPayloadValue<string>("setup_action").Should().Be("update");
        signedIn.Query["state"].Should().Be("install-state");
    }

    [Fact]
    public async Task A_request_awaiting_an_owners_approval_is_told_apart_with_and_without_a_code()
    {
        GitHub.InstallSetupAction = "request";
        using (var browser = Broker.NewBrowser())
        {
            using var start = await browser.Client.GetAsync(InstallUrl());
            var outcome = await browser.ReturnFromGitHubAsync(await Browser.ApproveAtGitHubAsync(start.Headers.Location!));
            var jwt = await VerifiedAsync(outcome.Query["token"]);
            jwt.GetPayloadValue<string>("installation_status").Should().Be("pending_approval");
            jwt.TryGetPayloadValue<long>("installation_id", out _).Should().BeFalse();
        }

        GitHub.InstallRequestsUserAuthorization = false;
        using (var browser = Broker.NewBrowser())
        {
            using var start = await browser.Client.GetAsync(InstallUrl());
            var outcome = await browser.ReturnFromGitHubAsync(await Browser.ApproveAtGitHubAsync(start.Headers.Location!));
            outcome.Query["error"].Should().Be("installation_pending");
            outcome.Query["state"].Should().Be("install-state");
            outcome.Query.Should().NotContainKey("token");
        }
    }

    [Fact]
    public async Task A_spoofed_installation_id_is_refused_and_records_nothing()
    {
        using var browser = Broker.NewBrowser();
        using var start = await browser.Client.GetAsync(InstallUrl());
        var back = await Browser.ApproveAtGitHubAsync(start.Headers.Location!);
        var spoofed = back.Replace("installation_id=4242", "installation_id=999", StringComparison.Ordinal);

        var outcome = await browser.ReturnFromGitHubAsync(spoofed);

        outcome.Query["error"].Should().Be("installation_unverified");
        outcome.Query.Should().NotContainKey("token");
        (await Store.FindInstallationInstancesAsync(999, CancellationToken.None)).Should().BeEmpty();
    }

    [Fact]
    public async Task The_install_relay_refuses_an_OAuth_App_entry_and_an_unknown_redirect_with_a_page()
    {
        using var browser = Broker.NewBrowser();
        foreach (var url in new[] { InstallUrl("https://legacy.example.com/oauth/done"), InstallUrl("https://evil.example.net/cb") })
        {
            using var refused = await browser.Client.GetAsync(url);
            refused.StatusCode.Should().Be(HttpStatusCode.BadRequest, url);
            refused.Headers.Location.Should().BeNull();
        }
    }

    [Fact]
    public async Task The_organisation_access_page_links_to_this_apps_page_on_GitHub_and_back_to_an_allowed_instance_only()
    {
        using var client = Broker.CreateClient();
        var oauthApp = await client.GetStringAsync("/auth/github/org-access?redirect_uri=" + Uri.EscapeDataString("https://legacy.example.com/oauth/done"));
        oauthApp.Should().Contain("OAuth App access restrictions")
            .And.Contain($"href=\"{GitHub.BaseUrl}/settings/connections/applications/{FakeGitHub.ClientId}\"")
            .And.Contain("href=\"https://legacy.example.com/oauth/done\"");
        var gitHubApp = await client.GetStringAsync("/auth/github/org-access?redirect_uri=" + Uri.EscapeDataString(StandardInstances.TrackeepCallback));
        gitHubApp.Should().Contain($"href=\"{GitHub.BaseUrl}/apps/{FakeGitHub.AppSlug}/installations/new\"");

        using var refused = await client.GetAsync("/auth/github/org-access?redirect_uri=" + Uri.EscapeDataString("https://evil.example.net/cb"));
        refused.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await refused.Content.ReadAsStringAsync()).Should().NotContain("href=\"https://evil.example.net");
        var metadata = JsonNode.Parse(await client.GetStringAsync("/.well-known/oauth-authorization-server"))!;
        ((string?)metadata["github_org_access_endpoint"]).Should().Be(Broker.PublicUrl.TrimEnd('/') + "/auth/github/org-access");
        ((string?)metadata["github_app_installation_endpoint"]).Should().Be(Broker.PublicUrl.TrimEnd('/') + "/auth/github/install");
    }

    private IWebhookStore Store => Broker.Services.GetRequiredService<IWebhookStore>();

    private static string InstallUrl(string redirectUri = StandardInstances.TrackeepCallback) =>
        QueryHelpers.AddQueryString("/auth/github/install", new Dictionary<string, string?> { ["redirect_uri"] = redirectUri, ["state"] = "install-state" });
}
