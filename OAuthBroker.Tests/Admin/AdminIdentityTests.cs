using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc.Testing;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Admin;

/// <summary>
/// Who an admin is: a GitHub id, not a login that can change hands; and a session that ends server-side on sign-out
/// or when its admin leaves the list, not when its cookie happens to expire.
/// </summary>
public sealed class AdminIdentityTests : FakeGitHubTest
{
    private const string PublicUrl = "https://broker.test";

    [Fact]
    public async Task An_admin_named_by_GitHub_id_signs_in()
    {
        await using var broker = Broker(new() { ["Admin:GitHubIds:0"] = GitHub.User.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var browser = broker.NewBrowser("https://localhost");

        var (signedIn, _) = await SignInAsync(browser);

        signedIn.Should().Be(HttpStatusCode.OK);
        (await browser.Client.GetAsync("/admin/api/instances")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_login_renamed_and_claimed_by_another_GitHub_account_is_not_an_admin()
    {
        GitHub.User = GitHub.User with { Login = "octo-admin" };
        await using var broker = Broker(new() { ["Admin:GitHubLogins:0"] = "octo-admin" });
        using (var first = broker.NewBrowser("https://localhost"))
        {
            (await SignInAsync(first)).Status.Should().Be(HttpStatusCode.OK, "the first sign-in pins the login to its id");
        }

        GitHub.User = FakeGitHubUser.Random() with { Login = "octo-admin" };
        using var impostor = broker.NewBrowser("https://localhost");
        var (status, _) = await SignInAsync(impostor);

        status.Should().Be(HttpStatusCode.Forbidden);
        (await impostor.Client.GetAsync("/admin/api/instances")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Signing_out_ends_the_session_server_side_and_lands_on_a_page_that_does_not_sign_in_again()
    {
        await using var broker = Broker(new() { ["Admin:GitHubIds:0"] = GitHub.User.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var browser = broker.NewBrowser("https://localhost");
        var (_, cookie) = await SignInAsync(browser);
        var csrf = await browser.Client.GetFromJsonAsync<JsonObject>("/admin/api/csrf");

        using var logout = new HttpRequestMessage(HttpMethod.Post, "/admin/logout") { Headers = { { "X-CSRF-Token", (string)csrf!["token"]! } } };
        using var signedOut = await browser.Client.SendAsync(logout);
        using var page = await browser.Client.GetAsync(signedOut.Headers.Location);

        signedOut.StatusCode.Should().Be(HttpStatusCode.SeeOther);
        signedOut.Headers.Location!.OriginalString.Should().Be("/admin/signed-out");
        page.StatusCode.Should().Be(HttpStatusCode.OK);
        (await page.Content.ReadAsStringAsync()).Should().Contain("signed out");
        (await WithCookieAsync(broker, cookie)).Should().Be(HttpStatusCode.Unauthorized, "a copy of the cookie taken before sign-out is worthless after");
    }

    [Fact]
    public async Task An_admin_removed_from_the_settings_loses_the_session_at_the_next_request()
    {
        var id = GitHub.User.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string cookie;
        await using (var before = Broker(new() { ["Admin:GitHubIds:0"] = id }))
        {
            using var browser = before.NewBrowser("https://localhost");
            (_, cookie) = await SignInAsync(browser);
            (await WithCookieAsync(before, cookie)).Should().Be(HttpStatusCode.OK);
        }

        // The same data folder and key ring, so the cookie still decrypts: only the server-side check can refuse it.
        await using var after = Broker(new() { ["Admin:GitHubIds:0"] = "1", ["Admin:ApiToken"] = "identity-tests-admin-token-0123456789ab" });

        (await WithCookieAsync(after, cookie)).Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Over_https_the_antiforgery_cookie_is_host_prefixed_and_secure_like_the_session()
    {
        await using var broker = Broker(new() { ["Admin:GitHubIds:0"] = GitHub.User.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var browser = broker.NewBrowser("https://localhost");
        await SignInAsync(browser);

        using var csrf = await browser.Client.GetAsync("/admin/api/csrf");

        var cookie = csrf.Headers.GetValues("Set-Cookie").Single(value => value.StartsWith("__Host-oab-admin-csrf=", StringComparison.Ordinal));
        cookie.Should().Contain("secure").And.Contain("path=/").And.Contain("samesite=strict").And.Contain("httponly");
    }

    [Fact]
    public async Task Expired_admin_sessions_are_purged()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = Broker(new() { ["Admin:GitHubIds:0"] = GitHub.User.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, clock);
        using var browser = broker.NewBrowser("https://localhost");
        await SignInAsync(browser);
        (await broker.ScalarAsync("SELECT COUNT(*) FROM admin_sessions")).Should().Be(1);

        clock.Advance(TimeSpan.FromHours(8) + OAuthBroker.Storage.PurgeService.Interval);

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(10), async () => await broker.ScalarAsync("SELECT COUNT(*) FROM admin_sessions") == 0))
            .Should().BeTrue(broker.Logs.AllText);
    }

    private BrokerFactory Broker(Dictionary<string, string?> admin, Microsoft.Extensions.Time.Testing.FakeTimeProvider? clock = null)
    {
        admin["Broker:PublicUrl"] = PublicUrl;
        return new BrokerFactory(GitHub, Folder, Instances.Json, admin, clock);
    }

    private static async Task<(HttpStatusCode Status, string Cookie)> SignInAsync(Browser browser)
    {
        using var start = await browser.Client.GetAsync("/admin/login");
        var callback = await Browser.ApproveAtGitHubAsync(start.Headers.Location!);
        using var signedIn = await browser.Client.GetAsync(new Uri(callback).PathAndQuery);
        var cookie = signedIn.Headers.TryGetValues("Set-Cookie", out var values)
            ? values.FirstOrDefault(value => value.StartsWith("__Host-oab-admin=", StringComparison.Ordinal))?.Split(';')[0] ?? ""
            : "";
        return (signedIn.StatusCode, cookie);
    }

    private static async Task<HttpStatusCode> WithCookieAsync(BrokerFactory broker, string cookie)
    {
        using var client = broker.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false, BaseAddress = new Uri("https://localhost") });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/api/instances") { Headers = { { "Cookie", cookie } } };
        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }
}
