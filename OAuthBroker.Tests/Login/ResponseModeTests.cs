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
    [InlineData("query", 5)]
    [InlineData("fragment", 5)]
    [InlineData("form_post", 60)]
    public async Task A_token_handed_back_in_a_URL_lives_minutes_and_one_posted_lives_the_token_lifetime(string mode, int minutes)
    {
        using var browser = fixture.Factory.NewBrowser();

        var token = new JsonWebToken(ResultOf(await LoginWithModeAsync(browser, mode), mode)["token"]);

        (token.ValidTo - token.IssuedAt).Should().Be(TimeSpan.FromMinutes(minutes), "Broker:UrlTokenLifetime is 5 minutes and Broker:TokenLifetime an hour");
    }

    [Theory]
    [InlineData("query")]
    [InlineData("fragment")]
    [InlineData("form_post")]
    public async Task Every_answer_names_the_broker_in_iss_success_and_error_alike(string mode)
    {
        using var browser = fixture.Factory.NewBrowser();
        var success = ResultOf(await LoginWithModeAsync(browser, mode), mode);
        fixture.GitHub.Deny = true;
        Dictionary<string, string> denied;
        try
        {
            denied = ResultOf(await LoginWithModeAsync(browser, mode), mode);
        }
        finally
        {
            fixture.GitHub.Deny = false;
        }

        success["iss"].Should().Be("http://localhost");
        denied["iss"].Should().Be("http://localhost");
        denied["error"].Should().Be("access_denied");
    }

    [Fact]
    public async Task A_query_mode_redirect_ends_with_an_empty_fragment_of_its_own()
    {
        using var browser = fixture.Factory.NewBrowser();

        var outcome = await LoginWithModeAsync(browser, "query");

        // A browser keeps a fragment across a redirect whose Location has none (RFC 9700 4.1.3).
        outcome.Response.Headers.Location!.OriginalString.Should().EndWith("#_");
        outcome.Response.Headers.Location.Fragment.Should().Be("#_");
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

    /// <summary>The fields the instance receives, wherever the mode puts them.</summary>
    private static Dictionary<string, string> ResultOf(LoginOutcome outcome, string mode)
    {
        if (mode == "form_post")
        {
            var html = outcome.Response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            return HiddenField().Matches(html).ToDictionary(match => match.Groups[1].Value, match => WebUtility.HtmlDecode(match.Groups[2].Value));
        }

        var location = outcome.Response.Headers.Location!;
        var fields = QueryHelpers.ParseQuery(mode == "fragment" ? location.Fragment.TrimStart('#') : location.Query);
        return fields.ToDictionary(pair => pair.Key, pair => pair.Value.ToString());
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

public sealed class RequiredStateTests : FakeGitHubTest
{
    [Fact]
    public async Task An_entry_that_requires_state_refuses_a_login_without_one_and_an_older_entry_still_takes_it()
    {
        var allowlist = new AllowlistBuilder()
            .Add("strict", ["https://strict.example.com/cb"], null, requireState: true)
            .Add("older", ["https://older.example.com/cb"], null)
            .ToJson();
        await using var broker = new BrokerFactory(GitHub, Folder, allowlist);
        using var browser = broker.NewBrowser();

        using var withoutState = await browser.StartAsync("https://strict.example.com/cb", state: null);
        using var emptyState = await browser.StartAsync("https://strict.example.com/cb", state: "");
        using var withState = await browser.StartAsync("https://strict.example.com/cb", state: "s-123");
        using var olderWithout = await browser.StartAsync("https://older.example.com/cb", state: null);

        withoutState.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        withoutState.Headers.Location.Should().BeNull("a refusal never redirects");
        (await withoutState.Content.ReadAsStringAsync()).Should().Contain("state is required by this instance");
        emptyState.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        withState.StatusCode.Should().Be(HttpStatusCode.Redirect);
        olderWithout.StatusCode.Should().Be(HttpStatusCode.Redirect, "entries written before requireState keep working");
    }
}
