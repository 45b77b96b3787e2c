using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Login;

public sealed class LoginFlowTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private BrokerFactory Broker => fixture.Factory;

    [Fact]
    public async Task Full_flow_redirects_to_the_instance_with_a_signed_token_its_user_and_its_state()
    {
        using var browser = Broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback, state: "trackeep-opaque/state+=");

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.Redirect, Broker.Logs.AllText);
        outcome.Location!.GetLeftPart(UriPartial.Path).Should().Be(StandardInstances.TrackeepCallback);
        outcome.Query["user"].Should().Be(fixture.GitHub.User.Login);
        outcome.Query["state"].Should().Be("trackeep-opaque/state+=");
        outcome.Response.Headers.CacheControl!.NoStore.Should().BeTrue();
        outcome.Response.Headers.GetValues("Referrer-Policy").Should().Equal("no-referrer");

        var jwt = new JsonWebToken(outcome.Token);
        jwt.Audiences.Should().Equal("trackeep-home");
        jwt.GetPayloadValue<string>("username").Should().Be(fixture.GitHub.User.Login);
        jwt.GetPayloadValue<long>("github_id").Should().Be(fixture.GitHub.User.Id);
    }

    [Fact]
    public async Task Start_sends_the_browser_to_GitHub_with_client_id_callback_scope_state_and_an_S256_challenge()
    {
        using var browser = Broker.NewBrowser();

        using var response = await browser.StartAsync(StandardInstances.TrackeepCallback);

        response.StatusCode.Should().Be(HttpStatusCode.Redirect);
        var location = response.Headers.Location!;
        location.GetLeftPart(UriPartial.Path).Should().Be(fixture.GitHub.BaseUrl + "/login/oauth/authorize");
        var query = QueryHelpers.ParseQuery(location.Query);
        query["client_id"].ToString().Should().Be(FakeGitHub.ClientId);
        query["redirect_uri"].ToString().Should().Be("http://localhost/auth/github/callback");
        query["scope"].ToString().Should().Be("read:user user:email");
        query["state"].ToString().Should().MatchRegex("^[A-Za-z0-9_-]{54}$", "its expiry and a 256-bit random value");
        query["state"].ToString().Should().NotContain("instance-state", "the instance's state never goes to GitHub");
        query["code_challenge"].ToString().Should().MatchRegex("^[A-Za-z0-9_-]{43}$");
        query["code_challenge_method"].ToString().Should().Be("S256");

        var cookie = response.Headers.GetValues("Set-Cookie").Single();
        cookie.Should().Contain("httponly").And.Contain("samesite=lax").And.Contain("max-age=600");
    }

    [Fact]
    public async Task The_code_exchange_sends_the_PKCE_verifier_and_asks_for_JSON()
    {
        using var browser = Broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);
        var code = QueryHelpers.ParseQuery(new Uri(callback).Query)["code"].ToString();

        var outcome = await browser.ReturnFromGitHubAsync(callback);

        outcome.Query.Should().ContainKey("token");
        var exchange = fixture.GitHub.TokenRequests.Single(request => request.Code == code);
        exchange.CodeVerifier.Should().MatchRegex("^[A-Za-z0-9_-]{43}$");
        exchange.RedirectUri.Should().Be("http://localhost/auth/github/callback");
        exchange.Accept.Should().Contain("application/json");
    }

    [Fact]
    public async Task Private_email_is_read_from_the_primary_verified_address()
    {
        using var browser = Broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback);

        fixture.GitHub.User.PublicEmail.Should().BeNull();
        new JsonWebToken(outcome.Token).GetPayloadValue<string>("email").Should().Be(fixture.GitHub.User.PrimaryEmail);
    }

    [Fact]
    public async Task Without_the_email_scope_no_address_is_looked_up()
    {
        using var browser = Broker.NewBrowser();

        var outcome = await browser.LoginAsync("https://login-only.example.org/signed-in");

        var jwt = new JsonWebToken(outcome.Token);
        jwt.TryGetPayloadValue<string>("email", out _).Should().BeFalse();
        jwt.GetPayloadValue<string>("scope").Should().Be("read:user");
    }

    [Fact]
    public async Task Identity_only_instance_gets_no_access_token()
    {
        using var browser = Broker.NewBrowser();

        var outcome = await browser.LoginAsync("https://login-only.example.org/signed-in");

        var jwt = new JsonWebToken(outcome.Token);
        jwt.Audiences.Should().Equal("login-only");
        jwt.TryGetPayloadValue<string>("access_token", out _).Should().BeFalse();
        jwt.GetPayloadValue<string>("username").Should().Be(fixture.GitHub.User.Login);
    }

    [Fact]
    public async Task Trackeep_base_url_is_sent_to_its_registered_auth_callback()
    {
        using var browser = Broker.NewBrowser();

        var outcome = await browser.LoginAsync("https://trackeep.example.com", state: null);

        outcome.Location!.GetLeftPart(UriPartial.Path).Should().Be(StandardInstances.TrackeepCallback);
        outcome.Query.Should().ContainKeys("token", "user").And.NotContainKey("state");
    }

    [Fact]
    public async Task Wildcard_entry_redirects_to_the_tenant_host_that_asked()
    {
        using var browser = Broker.NewBrowser();

        var outcome = await browser.LoginAsync("https://acme-42.tenants.example.net/auth/callback");

        outcome.Location!.GetLeftPart(UriPartial.Path).Should().Be("https://acme-42.tenants.example.net/auth/callback");
        new JsonWebToken(outcome.Token).Audiences.Should().Equal("tenants");
    }

    [Fact]
    public async Task Loopback_entry_accepts_any_port()
    {
        using var browser = Broker.NewBrowser();

        var outcome = await browser.LoginAsync("http://127.0.0.1:49152/callback");

        outcome.Location!.ToString().Should().StartWith("http://127.0.0.1:49152/callback?");
    }

    [Theory]
    [InlineData("https://evil.example.com/auth/callback", "not registered")]
    [InlineData("https://trackeep.example.com/auth/callback/", "not registered")]
    [InlineData("https://trackeep.example.com/auth/callback?next=/x", "query")]
    [InlineData("https://trackeep.example.com@evil.example.com/auth/callback", "user information")]
    [InlineData("http://trackeep.example.com/auth/callback", "https")]
    [InlineData("https://trackeep.example.com\\@evil.example.com/auth/callback", "backslash")]
    [InlineData("", "missing")]
    public async Task Refused_redirect_uri_gets_a_400_page_and_never_a_redirect(string redirectUri, string reason)
    {
        using var browser = Broker.NewBrowser();

        using var response = await browser.StartAsync(redirectUri);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        response.Headers.Location.Should().BeNull();
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/html");
        (await response.Content.ReadAsStringAsync()).Should().Contain(reason);
        fixture.GitHub.AuthorizeRequests.Should().NotContain(request => request.GetValueOrDefault("redirect_uri") == redirectUri);
    }

    [Fact]
    public async Task Refused_redirect_uri_gets_problem_details_for_an_API_client()
    {
        using var browser = Broker.NewBrowser();
        using var request = new HttpRequestMessage(HttpMethod.Get, Browser.StartUrl("https://evil.example.com/cb"));
        request.Headers.Accept.ParseAdd("application/json");

        using var response = await browser.Client.SendAsync(request);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        problem.RootElement.GetProperty("status").GetInt32().Should().Be(400);
        problem.RootElement.GetProperty("detail").GetString().Should().Contain("not registered");
    }

    [Fact]
    public async Task Refusal_page_does_not_reflect_the_raw_input()
    {
        using var browser = Broker.NewBrowser();

        using var response = await browser.StartAsync("https://x.example/<script>alert(1)</script>");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync()).Should().NotContain("<script>");
        response.Headers.GetValues("Content-Security-Policy").Single().Should().Contain("default-src 'none'").And.Contain("frame-ancestors 'none'");
    }

    [Fact]
    public async Task Repeated_redirect_uri_parameter_is_refused()
    {
        using var browser = Broker.NewBrowser();

        using var response = await browser.Client.GetAsync("/auth/github?redirect_uri=https%3A%2F%2Ftrackeep.example.com%2Fauth%2Fcallback&redirect_uri=https%3A%2F%2Fevil.example.com%2F");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Instance_state_longer_than_512_characters_is_refused()
    {
        using var browser = Broker.NewBrowser();

        using var ok = await browser.StartAsync(StandardInstances.TrackeepCallback, state: new string('s', 512));
        using var tooLong = await browser.StartAsync(StandardInstances.TrackeepCallback, state: new string('s', 513));

        ok.StatusCode.Should().Be(HttpStatusCode.Redirect);
        tooLong.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("read:user", "read:user")]
    [InlineData("read:user,repo", "read:user repo")]
    [InlineData("repo user:email read:user", "repo user:email read:user")]
    public async Task Scope_may_narrow_or_extend_the_default_within_the_instance_allowance(string requested, string sent)
    {
        using var browser = Broker.NewBrowser();

        using var response = await browser.StartAsync(StandardInstances.TrackeepCallback, scope: requested);

        response.StatusCode.Should().Be(HttpStatusCode.Redirect);
        QueryHelpers.ParseQuery(response.Headers.Location!.Query)["scope"].ToString().Should().Be(sent);
    }

    [Theory]
    [InlineData("delete_repo")]
    [InlineData("read:user admin:org")]
    [InlineData("READ:USER")]
    [InlineData("read:user\nrepo")]
    public async Task Scope_beyond_the_instance_allowance_is_refused(string requested)
    {
        using var browser = Broker.NewBrowser();

        using var response = await browser.StartAsync(StandardInstances.TrackeepCallback, scope: requested);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        response.Headers.Location.Should().BeNull();
    }

    [Fact]
    public async Task Granted_scope_from_GitHub_is_what_the_token_says()
    {
        using var browser = Broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback, scope: "read:user repo");

        new JsonWebToken(outcome.Token).GetPayloadValue<string>("scope").Should().Be("read:user repo");
    }

    [Fact]
    public async Task The_user_is_recorded_once_and_keeps_its_broker_id_across_logins()
    {
        using var first = Broker.NewBrowser();
        using var second = Broker.NewBrowser();

        var one = new JsonWebToken((await first.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        var two = new JsonWebToken((await second.LoginAsync("https://direct.example.org/cb")).Token);

        two.Subject.Should().Be(one.Subject);
        two.GetPayloadValue<long>("user_id").Should().Be(one.GetPayloadValue<long>("user_id"));
    }
}
