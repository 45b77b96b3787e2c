using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tests.Tokens;

namespace OAuthBroker.Tests.Admin;

/// <summary>
/// The admin's view of users: where one signed in, who nears GitHub's ten tokens per user, app and scope set, and ending
/// a user's access, which revokes their grant at GitHub at the next refresh of any of their refresh tokens.
/// </summary>
public sealed class AdminUsersTests : TokenLifecycleTest
{
    private const string ApiToken = "test-admin-token-0123456789abcdef0123456789";
    private const string LegacyCallback = "https://legacy.example.com/oauth/done";

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        GitHub.ExpiringTokens = true;
        var document = JsonNode.Parse(Instances.Json)!;
        var trackeep = document["instances"]!.AsArray().Single(entry => (string?)entry!["id"] == "trackeep-home")!.AsObject();
        trackeep["refresh"] = true;
        trackeep["clientSecret"] = SecretEntry(TrackeepSecret);
        Broker = new BrokerFactory(GitHub, Folder, document.ToJsonString(), new Dictionary<string, string?> { ["Admin:ApiToken"] = ApiToken });
    }

    [Fact]
    public async Task The_admin_sees_a_users_instances_and_who_nears_the_limit_on_the_page_and_through_the_API()
    {
        for (var i = 0; i < 8; i++)
        {
            await LoginAsync(i < 5 ? StandardInstances.TrackeepCallback : LegacyCallback, i < 5 ? "trackeep-home" : "legacy-rsa");
        }

        using var client = Admin();
        var user = await client.GetFromJsonAsync<JsonObject>($"/admin/api/users/{GitHub.User.Login.ToUpperInvariant()}");
        ((string?)user!["login"]).Should().Be(GitHub.User.Login);
        user["instances"]!.AsArray().Select(row => $"{row!["instanceId"]}:{row["tokens"]}").Should().BeEquivalentTo("trackeep-home:5", "legacy-rsa:3");
        user["nearTokenLimit"]!.AsArray().Should().ContainSingle().Which!["tokens"]!.GetValue<long>().Should().Be(8);
        var page = await client.GetStringAsync("/admin/users");
        page.Should().Contain("id=\"near-limit\"").And.Contain($">{GitHub.User.Login}</a></td><td>oauth-app</td><td>read:user user:email</td><td>8</td><td>2</td>");
        (await client.GetStringAsync($"/admin/users?login={GitHub.User.Login}")).Should().Contain("id=\"user-instances\"").And.Contain("class=\"warning\"");
        using var unknown = await client.GetAsync("/admin/api/users/nobody-here");
        unknown.StatusCode.Should().Be(HttpStatusCode.NotFound);
        unknown.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }

    [Fact]
    public async Task Ending_a_users_access_revokes_their_grant_at_the_next_refresh_and_the_instance_gets_invalid_grant()
    {
        var login = await LoginAsync();
        var (access, refresh) = Tokens(login);
        await LoginAsync(LegacyCallback, "legacy-rsa");

        using var client = Admin();
        using var ended = await client.PostAsync($"/admin/api/users/{GitHub.User.Login}/end-access", null);

        ended.StatusCode.Should().Be(HttpStatusCode.OK, await ended.Content.ReadAsStringAsync());
        var answer = await ended.Content.ReadFromJsonAsync<JsonObject>();
        answer!["refreshTokensMarked"]!.GetValue<int>().Should().Be(1);
        answer["instancesOutOfReach"]!.AsArray().Select(id => (string?)id).Should().Equal("legacy-rsa");
        GitHub.IsLive(access).Should().BeTrue("nothing reaches GitHub until the instance refreshes");

        using var refreshed = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);

        refreshed.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var error = await refreshed.Content.ReadFromJsonAsync<JsonObject>();
        ((string?)error!["error"]).Should().Be("invalid_grant");
        ((string?)error["error_description"]).Should().Contain("administrator ended");
        GitHub.GrantRevokeCallCount.Should().Be(1);
        GitHub.LiveTokenCount(FakeGitHub.ClientId).Should().Be(0, "the grant went, with legacy-rsa's token and the one the refresh made");
        (await client.GetFromJsonAsync<JsonObject>($"/admin/api/users/{GitHub.User.Login}"))!["instances"]!.AsArray().Should().BeEmpty();
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE kind = 'admin' AND action = 'end_user_access' AND actor = 'api-token'")).Should().Be(1);
        (await Broker.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE kind = 'token' AND action = 'grant_revoked' AND instance_id = 'trackeep-home'")).Should().Be(1);
        SecretScan.AssertAbsent(GitHub.Secrets.Append(TrackeepSecret), Broker.Logs.AllText, Broker.DataPath, TestDatabase.PostgresDatabaseFor(Folder.Path));
    }

    private HttpClient Admin()
    {
        var client = Broker.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiToken);
        return client;
    }
}
