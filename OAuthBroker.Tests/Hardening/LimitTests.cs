using System.Net;
using System.Text;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Hardening;

public sealed class LimitTests : FakeGitHubTest
{
    [Fact]
    public async Task Login_requests_over_the_per_client_budget_get_429_with_Retry_After()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["RateLimits:LoginPerClientPerMinute"] = "4" });
        using var browser = broker.NewBrowser();

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 6; i++)
        {
            var response = await browser.StartAsync(StandardInstances.TrackeepCallback);
            statuses.Add(response.StatusCode);
            limited = response.StatusCode == HttpStatusCode.TooManyRequests ? response : limited;
        }

        statuses.Should().Equal(HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests);
        int.Parse(limited!.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture).Should().BeInRange(1, 60);
        (await broker.CreateClient().GetAsync("/healthz")).StatusCode.Should().Be(HttpStatusCode.OK, "other endpoints are not limited by the login budget");
    }

    [Fact]
    public async Task The_login_budget_counts_an_IPv6_network_as_one_client_and_covers_admin_login()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
        {
            ["RateLimits:LoginPerClientPerMinute"] = "3",
            ["Admin:GitHubLogins:0"] = "octo-admin",
        });
        using var client = broker.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        async Task<HttpStatusCode> FromAsync(string address, string path)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Add("X-Forwarded-For", address);
            using var response = await client.SendAsync(request);
            return response.StatusCode;
        }

        var start = Browser.StartUrl(StandardInstances.TrackeepCallback);
        // Four addresses of one /64, as one subscriber's machine can pick at will: one budget of three.
        var sameNetwork = new List<HttpStatusCode>();
        foreach (var address in new[] { "2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::1", "2001:db8:1:2::c" })
        {
            sameNetwork.Add(await FromAsync(address, start));
        }

        var otherNetwork = await FromAsync("2001:db8:1:3::a", start);
        var adminLogins = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            adminLogins.Add(await FromAsync("192.0.2.7", "/admin/login"));
        }

        sameNetwork.Should().Equal(HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.TooManyRequests);
        otherNetwork.Should().Be(HttpStatusCode.Redirect, "another /64 is another client");
        // Each /admin/login writes a pending login, so it counts against the same budget.
        adminLogins.Should().Equal(HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.TooManyRequests);
    }

    [Fact]
    public async Task Beyond_the_ceiling_on_pending_logins_a_start_gets_503_with_Retry_After_and_writes_nothing()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["RateLimits:PendingLogins"] = "3" }, clock);
        using var client = broker.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var start = Browser.StartUrl(StandardInstances.TrackeepCallback);

        // A botnet: every start from another address, so no per-client budget applies.
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 1; i <= 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, start) { Headers = { { "X-Forwarded-For", $"198.51.100.{i}" } } };
            var response = await client.SendAsync(request);
            statuses.Add(response.StatusCode);
            refused ??= response.StatusCode == HttpStatusCode.ServiceUnavailable ? response : null;
        }

        var rows = await broker.CountPendingLoginsAsync();
        clock.Advance(OAuthBroker.Login.PendingLoginStore.Lifetime);
        using var later = await client.GetAsync(start);

        statuses.Should().Equal(HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.Redirect, HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable);
        int.Parse(refused!.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture).Should().BeInRange(1, 600);
        rows.Should().Be(3, "a refused start writes no row");
        later.StatusCode.Should().Be(HttpStatusCode.Redirect, "the starts counted have aged out of the login lifetime");
    }

    [Theory]
    [InlineData("192.0.2.1", "192.0.2.1")]
    [InlineData("::ffff:192.0.2.1", "192.0.2.1")]
    [InlineData("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64")]
    [InlineData("2001:db8:aa:bb::", "2001:db8:aa:bb::/64")]
    [InlineData("::1", "::/64")]
    public void Rate_limits_key_IPv4_by_address_and_IPv6_by_its_64(string address, string key) =>
        OAuthBroker.Web.ClientAddress.RateLimitKey(IPAddress.Parse(address)).Should().Be(key);

    [Fact]
    public async Task Login_starts_over_the_per_instance_budget_get_429_while_other_instances_continue()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["RateLimits:LoginPerInstancePerMinute"] = "3" });
        using var browser = broker.NewBrowser();

        for (var i = 0; i < 3; i++)
        {
            (await browser.StartAsync(StandardInstances.TrackeepCallback)).StatusCode.Should().Be(HttpStatusCode.Redirect);
        }

        (await browser.StartAsync(StandardInstances.TrackeepCallback)).StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        (await browser.StartAsync("https://direct.example.org/cb")).StatusCode.Should().Be(HttpStatusCode.Redirect);
    }

    [Fact]
    public async Task User_info_requests_over_the_budget_get_429()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["RateLimits:UserInfoPerClientPerMinute"] = "2" });
        using var client = broker.CreateClient();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            statuses.Add((await client.GetAsync("/api/v1/user/me")).StatusCode);
        }

        statuses.Should().Equal(HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests);
    }

    [Fact]
    public async Task An_over_long_query_string_gets_414()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using var browser = broker.NewBrowser();

        using var response = await browser.StartAsync(StandardInstances.TrackeepCallback, state: new string('s', 5000));

        response.StatusCode.Should().Be(HttpStatusCode.RequestUriTooLong);
        response.Headers.Location.Should().BeNull();
    }

    [Fact]
    public async Task Kestrel_refuses_oversized_headers_and_bodies()
    {
        var port = LoopbackPort.Free();
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = $"http://127.0.0.1:{port}",
            ["Admin:ApiToken"] = "limit-test-token-0123456789abcdef0123",
        });
        broker.UseKestrel(port);
        broker.StartServer();
        using var client = new HttpClient { BaseAddress = new Uri(broker.PublicUrl) };

        using var bigHeader = new HttpRequestMessage(HttpMethod.Get, "/healthz");
        bigHeader.Headers.Add("X-Padding", new string('h', 40 * 1024));
        (await client.SendAsync(bigHeader)).StatusCode.Should().Be(HttpStatusCode.RequestHeaderFieldsTooLarge);

        using var bigBody = new HttpRequestMessage(HttpMethod.Post, "/admin/api/instances") { Content = new StringContent("{\"id\":\"" + new string('x', 2 * 1024 * 1024) + "\"}", Encoding.UTF8, "application/json") };
        bigBody.Headers.Authorization = new("Bearer", "limit-test-token-0123456789abcdef0123");
        bigBody.Headers.TryAddWithoutValidation("If-Match", "*");
        // The body waits for the server's go-ahead, as careful clients send large ones: a refusal then arrives without a
        // race against the client still writing into a closed connection (a broken pipe, seen once in CI).
        bigBody.Headers.ExpectContinue = true;
        var status = (await client.SendAsync(bigBody)).StatusCode;
        status.Should().BeOneOf(HttpStatusCode.RequestEntityTooLarge, HttpStatusCode.BadRequest);

        using var response = await client.GetAsync("/healthz");
        response.Headers.Contains("Server").Should().BeFalse();
    }

    [Fact]
    public async Task HSTS_is_sent_when_the_broker_is_served_over_https_only()
    {
        await using var https = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Broker:PublicUrl"] = "https://broker.example.com" });
        await using var http = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json);

        (await https.CreateClient().GetAsync("/healthz")).Headers.GetValues("Strict-Transport-Security").Single().Should().Be("max-age=31536000");
        (await http.CreateClient().GetAsync("/healthz")).Headers.Contains("Strict-Transport-Security").Should().BeFalse();
    }

    [Theory]
    [InlineData("/auth/github?redirect_uri=https%3A%2F%2Fevil.example.com%2Fcb")]
    [InlineData("/auth/github/callback?state=x&code=y")]
    [InlineData("/demo-does-not-exist")]
    public async Task Pages_carry_the_security_headers(string path)
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);

        using var response = await broker.CreateClient().GetAsync(path);

        response.Headers.GetValues("Content-Security-Policy").Single().Should().Contain("default-src 'none'").And.Contain("frame-ancestors 'none'").And.NotContain("unsafe");
        response.Headers.GetValues("X-Content-Type-Options").Single().Should().Be("nosniff");
        response.Headers.GetValues("X-Frame-Options").Single().Should().Be("DENY");
    }
}
