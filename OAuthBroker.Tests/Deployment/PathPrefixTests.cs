using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Deployment;

/// <summary>
/// Broker:PublicUrl with a path (https://broker.test/oauth), as behind a proxy that serves the broker under a prefix:
/// every route answers under it, and every URL, link and cookie the broker hands out carries it.
/// </summary>
public sealed partial class PathPrefixTests : FakeGitHubTest
{
    private const string PublicUrl = "https://broker.test/oauth";
    private const string ApiToken = "path-prefix-admin-token-0123456789abcdef0123";

    [Fact]
    public async Task A_login_runs_under_the_prefix_with_its_callback_cookie_and_issuer()
    {
        await using var broker = Broker();
        using var client = Client(broker);

        using var start = await client.GetAsync("/oauth" + Browser.StartUrl(StandardInstances.TrackeepCallback, "prefixed"));

        start.StatusCode.Should().Be(HttpStatusCode.Redirect, await start.Content.ReadAsStringAsync());
        QueryHelpers.ParseQuery(start.Headers.Location!.Query)["redirect_uri"].ToString().Should().Be(PublicUrl + "/auth/github/callback");
        var cookie = start.Headers.GetValues("Set-Cookie").Single();
        cookie.Should().StartWith("__Secure-oab-", "browsers refuse a __Host- cookie whose path is not /").And.Contain("path=/oauth;").And.Contain("secure");
        var callback = new Uri(await Browser.ApproveAtGitHubAsync(start.Headers.Location!));
        callback.AbsolutePath.Should().Be("/oauth/auth/github/callback");

        using var back = await client.GetAsync(callback.PathAndQuery);

        back.StatusCode.Should().Be(HttpStatusCode.Redirect, await back.Content.ReadAsStringAsync());
        var query = QueryHelpers.ParseQuery(back.Headers.Location!.Query);
        query["iss"].ToString().Should().Be(PublicUrl);
        new JsonWebToken(query["token"].ToString()).Issuer.Should().Be(PublicUrl);
        using var me = new HttpRequestMessage(HttpMethod.Get, "/oauth/api/v1/user/me");
        me.Headers.Authorization = new("Bearer", query["token"].ToString());
        (await client.SendAsync(me)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Metadata_and_JWKS_are_served_under_the_prefix_and_name_it()
    {
        await using var broker = Broker();
        using var client = Client(broker);

        var metadata = System.Text.Json.JsonDocument.Parse(await client.GetStringAsync("/oauth/.well-known/oauth-authorization-server")).RootElement;

        metadata.GetProperty("issuer").GetString().Should().Be(PublicUrl);
        foreach (var endpoint in new[] { "authorization_endpoint", "jwks_uri", "userinfo_endpoint" })
        {
            metadata.GetProperty(endpoint).GetString().Should().StartWith(PublicUrl + "/");
        }

        (await client.GetAsync("/oauth/.well-known/jwks.json")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_admin_page_links_forms_redirects_and_cookies_stay_under_the_prefix()
    {
        await using var broker = Broker();
        using var anonymous = Client(broker);
        using var signIn = await anonymous.GetAsync("/oauth/admin");
        signIn.Headers.Location!.OriginalString.Should().Be("/oauth/admin/login");

        using var client = Client(broker);
        client.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);
        using var page = await client.GetAsync("/oauth/admin");
        var html = await page.Content.ReadAsStringAsync();

        page.StatusCode.Should().Be(HttpStatusCode.OK, html);
        var targets = LinkTargets().Matches(html).Select(match => match.Groups[2].Value).ToList();
        targets.Should().NotBeEmpty().And.OnlyContain(target => target.StartsWith("/oauth/admin", StringComparison.Ordinal));
        page.Headers.GetValues("Set-Cookie").Should().Contain(cookie => cookie.StartsWith("__Secure-oab-admin-csrf=", StringComparison.Ordinal) && cookie.Contains("path=/oauth;", StringComparison.Ordinal));
        using var signedOut = await anonymous.GetAsync("/oauth/admin/signed-out");
        (await signedOut.Content.ReadAsStringAsync()).Should().Contain("href=\"/oauth/admin/login\"");
    }

    private BrokerFactory Broker() => new(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
    {
        ["Broker:PublicUrl"] = PublicUrl,
        ["Admin:ApiToken"] = ApiToken,
    });

    private static HttpClient Client(BrokerFactory broker) =>
        broker.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://broker.test"), AllowAutoRedirect = false });

    [GeneratedRegex("(href|action)=\"([^\"]*)\"")]
    private static partial Regex LinkTargets();
}
