using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Tokens;

/// <summary>
/// The broker's two GitHub integrations side by side: trackeep-home signs in through the GitHub App
/// (<c>"provider": "github-app"</c>), legacy-rsa through the OAuth App; each one's tokens are issued, refreshed and
/// revoked by its own app, with its own credentials, and the JWT says which.
/// </summary>
public sealed class GitHubAppTests : TokenLifecycleTest
{
    private const string LegacyCallback = "https://legacy.example.com/oauth/done";

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        GitHub.ExpiringTokens = true;
        Broker = new BrokerFactory(GitHub, Folder, Allowlist());
    }

    [Fact]
    public async Task A_GitHub_App_entry_signs_in_through_the_GitHub_App_and_its_expiring_token_is_refreshed_and_revoked_by_that_app()
    {
        var login = await LoginAsync();

        var authorize = GitHub.AuthorizeRequests.Single();
        authorize["client_id"].Should().Be(FakeGitHub.AppClientId);
        authorize.Should().NotContainKey("scope", "a GitHub App's reach is its permissions");
        authorize["code_challenge_method"].Should().Be("S256");
        GitHub.TokenRequests.Single().ClientId.Should().Be(FakeGitHub.AppClientId);
        login.GetPayloadValue<string>("provider").Should().Be("github-app");
        login.GetPayloadValue<string>("scope").Should().BeEmpty();
        login.GetPayloadValue<string>("email").Should().Be(GitHub.User.PrimaryEmail, "read from /user/emails with the app's e-mail permission");
        login.GetPayloadValue<long>("expires_at").Should().BeCloseTo(DateTimeOffset.UtcNow.AddHours(8).ToUnixTimeSeconds(), 60);
        var (access, refresh) = Tokens(login);
        access.Should().StartWith("ghu_");
        GitHub.IssuerOf(access).Should().Be(FakeGitHub.AppClientId);

        using var refreshed = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);

        refreshed.StatusCode.Should().Be(HttpStatusCode.OK, await refreshed.Content.ReadAsStringAsync());
        var renewed = await VerifiedAsync((string)(await refreshed.Content.ReadFromJsonAsync<JsonObject>())!["token"]!);
        renewed.GetPayloadValue<string>("provider").Should().Be("github-app");
        var (newAccess, _) = Tokens(renewed);
        GitHub.IssuerOf(newAccess).Should().Be(FakeGitHub.AppClientId, "the refresh went to the GitHub App with its own secret");
        GitHub.IsLive(access).Should().BeFalse();

        using var revoked = await RevokeAsync(newAccess, "trackeep-home", TrackeepSecret);
        revoked.StatusCode.Should().Be(HttpStatusCode.OK, await revoked.Content.ReadAsStringAsync());
        GitHub.IsLive(newAccess).Should().BeFalse("revoked at /applications/{the GitHub App's client id}/token");
        SecretScan.AssertAbsent(GitHub.Secrets.Append(TrackeepSecret), Broker.Logs.AllText, Broker.DataPath, TestDatabase.PostgresDatabaseFor(Folder.Path));
    }

    [Fact]
    public async Task An_OAuth_App_entry_beside_it_keeps_the_OAuth_App_for_sign_in_refresh_and_revocation()
    {
        var login = await LoginAsync(LegacyCallback, "legacy-rsa");

        GitHub.AuthorizeRequests.Single()["client_id"].Should().Be(FakeGitHub.ClientId);
        GitHub.AuthorizeRequests.Single()["scope"].Should().NotBeEmpty();
        login.GetPayloadValue<string>("provider").Should().Be("oauth-app");
        var (access, refresh) = Tokens(login);
        access.Should().StartWith("gho_");
        GitHub.IssuerOf(access).Should().Be(FakeGitHub.ClientId);

        using var refreshed = await RefreshAsync(refresh, "legacy-rsa", LegacySecret);

        refreshed.StatusCode.Should().Be(HttpStatusCode.OK, await refreshed.Content.ReadAsStringAsync());
        var (newAccess, _) = Tokens(await VerifiedAsync((string)(await refreshed.Content.ReadFromJsonAsync<JsonObject>())!["token"]!, "legacy-rsa"));
        GitHub.IssuerOf(newAccess).Should().Be(FakeGitHub.ClientId);
        using var revoked = await RevokeAsync(newAccess, "legacy-rsa", LegacySecret);
        revoked.StatusCode.Should().Be(HttpStatusCode.OK);
        GitHub.IsLive(newAccess).Should().BeFalse();
    }

    [Fact]
    public async Task Without_the_e_mail_permission_the_GitHub_App_sign_in_completes_without_an_address()
    {
        GitHub.AppEmailPermission = false;

        var login = await LoginAsync();

        login.GetPayloadValue<string>("username").Should().Be(GitHub.User.Login);
        login.TryGetPayloadValue<string>("email", out _).Should().BeFalse("GitHub answered 403 to /user/emails, and the profile hides the address");
    }

    [Fact]
    public async Task A_GitHub_App_entry_on_a_broker_without_a_GitHub_App_is_refused_with_a_reason_and_OAuth_App_entries_go_on()
    {
        await Broker.DisposeAsync();
        Broker = new BrokerFactory(GitHub, Folder, Allowlist(), new Dictionary<string, string?> { ["GitHubApp:ClientId"] = "", ["GitHubApp:ClientSecret"] = "" });
        using var browser = Broker.NewBrowser();

        using var refused = await browser.StartAsync(StandardInstances.TrackeepCallback);

        refused.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        (await refused.Content.ReadAsStringAsync()).Should().Contain("no GitHub App configured");
        GitHub.AuthorizeRequests.Should().BeEmpty();
        (await browser.LoginAsync(LegacyCallback)).Query.Should().ContainKey("token");
    }

    [Fact]
    public async Task The_allowlist_refuses_an_unknown_provider_and_scopes_on_a_GitHub_App_entry()
    {
        var document = JsonNode.Parse(Allowlist())!;
        var entries = document["instances"]!.AsArray().OfType<JsonObject>().ToDictionary(entry => (string)entry["id"]!);
        entries["legacy-rsa"]["provider"] = "gitlab";
        entries["trackeep-home"]["scopes"] = new JsonArray("repo");

        var result = await AdminCli.RunProcessAsync(Broker, "allowlist", "validate", WriteFile(document.ToJsonString()));

        result.ExitCode.Should().NotBe(0);
        result.Error.Should().Contain("instances[1] (\"legacy-rsa\"): \"provider\" must be \"oauth-app\"")
            .And.Contain("(\"trackeep-home\"): \"scopes\" has no effect with \"provider\": \"github-app\"");
    }

    private string WriteFile(string json)
    {
        var path = Path.Combine(Folder.Path, "candidate.json");
        File.WriteAllText(path, json);
        return path;
    }

    /// <summary>trackeep-home on the GitHub App (no scopes), legacy-rsa on the OAuth App; both refresh with a client secret.</summary>
    private string Allowlist()
    {
        var document = JsonNode.Parse(Instances.Json)!;
        foreach (var entry in document["instances"]!.AsArray().OfType<JsonObject>())
        {
            switch ((string?)entry["id"])
            {
                case "trackeep-home":
                    entry["provider"] = "github-app";
                    entry.Remove("scopes");
                    entry["refresh"] = true;
                    entry["clientSecret"] = SecretEntry(TrackeepSecret);
                    break;
                case "legacy-rsa":
                    entry["refresh"] = true;
                    entry["clientSecret"] = SecretEntry(LegacySecret);
                    break;
                default:
                    break;
            }
        }

        return document.ToJsonString();
    }
}
