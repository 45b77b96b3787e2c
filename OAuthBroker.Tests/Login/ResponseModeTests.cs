using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Login;

public sealed partial class ResponseModeTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task Fragment_mode_puts_the_result_in_the_fragment_not_the_query()
    {
        using var browser = fixture.Factory.NewBrowser();
        var outcome = await LoginWithModeAsync(browser, "fragment");

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.Redirect);
        var location = outcome.Response.Headers.Location!;
        location.Query.Should().BeEmpty();
        var fields = QueryHelpers.ParseQuery(location.Fragment.TrimStart('#'));
        fields["state"].ToString().Should().Be("mode-state");
        fields["user"].ToString().Should().Be(fixture.GitHub.User.Login);
        new JsonWebToken(fields["token"].ToString()).Audiences.Should().Equal("trackeep-home");
        outcome.Response.Headers.CacheControl!.NoStore.Should().BeTrue();
        outcome.Response.Headers.GetValues("Referrer-Policy").Should().Equal("no-referrer");
    }

    [Fact]
    public async Task Form_post_mode_answers_an_auto_submitting_form_whose_script_alone_the_CSP_allows()
    {
        using var browser = fixture.Factory.NewBrowser();

        var outcome = await LoginWithModeAsync(browser, "form_post");

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.OK);
        outcome.Response.Headers.Location.Should().BeNull();
        var html = await outcome.Response.Content.ReadAsStringAsync();
        html.Should().Contain($"<form method=\"post\" action=\"{StandardInstances.TrackeepCallback}\">");
        var fields = HiddenField().Matches(html).ToDictionary(match => match.Groups[1].Value, match => WebUtility.HtmlDecode(match.Groups[2].Value));
        fields["state"].Should().Be("mode-state");
        new JsonWebToken(fields["token"]).Audiences.Should().Equal("trackeep-home");

        var csp = outcome.Response.Headers.GetValues("Content-Security-Policy").Single();
        var script = InlineScript().Match(html).Groups[1].Value;
        csp.Should().Contain($"script-src 'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(script)))}'");
        csp.Should().Contain("form-action https://trackeep.example.com;").And.Contain("frame-ancestors 'none'").And.NotContain("unsafe-inline");
        outcome.Response.Headers.CacheControl!.NoStore.Should().BeTrue();
        outcome.Response.Headers.GetValues("Referrer-Policy").Should().Equal("no-referrer");
    }

    [Fact]
    public async Task Errors_come_back_in_the_chosen_mode_too()
    {
        fixture.GitHub.Deny = true;
        try
        {
            using var browser = fixture.Factory.NewBrowser();
            var outcome = await LoginWithModeAsync(browser, "fragment");

            var fields = QueryHelpers.ParseQuery(outcome.Response.Headers.Location!.Fragment.TrimStart('#'));
            fields["error"].ToString().Should().Be("access_denied");
            fields["state"].ToString().Should().Be("mode-state");
        }
        finally
        {
            fixture.GitHub.Deny = false;
        }
    }

    [Theory]
    [InlineData("web_message")]
    [InlineData("FRAGMENT")]
    [InlineData("")]
    public async Task An_unknown_response_mode_is_refused(string mode)
    {
        using var browser = fixture.Factory.NewBrowser();

        using var response = await browser.Client.GetAsync(Browser.StartUrl(StandardInstances.TrackeepCallback) + "&response_mode=" + Uri.EscapeDataString(mode));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        response.Headers.Location.Should().BeNull();
    }

    private static async Task<LoginOutcome> LoginWithModeAsync(Browser browser, string mode)
    {
        using var start = await browser.Client.GetAsync(Browser.StartUrl(StandardInstances.TrackeepCallback, state: "mode-state") + "&response_mode=" + mode);
        start.StatusCode.Should().Be(HttpStatusCode.Redirect);
        return await browser.ReturnFromGitHubAsync(await Browser.ApproveAtGitHubAsync(start.Headers.Location!));
    }

    [GeneratedRegex("<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\">")]
    private static partial Regex HiddenField();

    [GeneratedRegex("<script>([^<]*)</script>")]
    private static partial Regex InlineScript();
}

public sealed class ExpiredLoginTests : FakeGitHubTest
{
    [Fact]
    public async Task A_login_GitHub_returns_after_it_expired_offers_to_start_again_at_the_instance()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, clock: clock);
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);

        clock.Advance(TimeSpan.FromMinutes(11));
        var outcome = await browser.ReturnFromGitHubAsync(callback);

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        outcome.Location.Should().BeNull();
        var page = await outcome.Response.Content.ReadAsStringAsync();
        page.Should().Contain("has expired").And.Contain("id=\"start-again\" href=\"https://trackeep.example.com/\"");
        GitHub.TokenCallCount.Should().Be(0);
    }
}
