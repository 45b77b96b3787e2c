using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Login;

public sealed class StateTests : FakeGitHubTest
{
    private readonly FakeTimeProvider clock = new(DateTimeOffset.UtcNow);
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        broker = new BrokerFactory(GitHub, Folder, Instances.Json, clock: clock);
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task Replayed_state_is_refused_without_calling_GitHub_again()
    {
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);
        (await browser.ReturnFromGitHubAsync(callback)).Query.Should().ContainKey("token");
        var exchanges = GitHub.TokenCallCount;

        var replay = await browser.ReturnFromGitHubAsync(callback);

        replay.Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        replay.Location.Should().BeNull();
        GitHub.TokenCallCount.Should().Be(exchanges);
    }

    [Fact]
    public async Task Replay_from_the_same_browser_after_success_says_already_used()
    {
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);
        var cookie = browser.LastBindingCookie!;
        (await browser.ReturnFromGitHubAsync(callback)).Query.Should().ContainKey("token");

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(callback).PathAndQuery);
        request.Headers.Add("Cookie", cookie);
        using var replay = await broker.CreateClient(new() { AllowAutoRedirect = false, HandleCookies = false }).SendAsync(request);

        replay.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await replay.Content.ReadAsStringAsync()).Should().Contain("already been completed");
    }

    [Fact]
    public async Task State_older_than_ten_minutes_is_refused_as_expired()
    {
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);

        clock.Advance(TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
        var outcome = await browser.ReturnFromGitHubAsync(callback);

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await outcome.Response.Content.ReadAsStringAsync()).Should().Contain("expired");
        GitHub.TokenCallCount.Should().Be(0);
    }

    [Fact]
    public async Task State_just_under_ten_minutes_old_still_completes()
    {
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);

        clock.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        var outcome = await browser.ReturnFromGitHubAsync(callback);

        outcome.Query.Should().ContainKey("token");
    }

    [Fact]
    public async Task State_completed_in_another_browser_is_refused_and_stays_usable_by_its_own()
    {
        using var victim = broker.NewBrowser();
        using var attacker = broker.NewBrowser();
        var callback = await victim.StartAndApproveAsync(StandardInstances.TrackeepCallback);

        var stolen = await attacker.ReturnFromGitHubAsync(callback);
        var own = await victim.ReturnFromGitHubAsync(callback);

        stolen.Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await stolen.Response.Content.ReadAsStringAsync()).Should().Contain("another browser");
        own.Query.Should().ContainKey("token", "a refused attempt from elsewhere must not burn the real login");
    }

    [Fact]
    public async Task Callback_with_a_different_cookie_value_is_refused()
    {
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);
        var cookieName = browser.LastBindingCookie!.Split('=')[0];

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(callback).PathAndQuery);
        request.Headers.Add("Cookie", $"{cookieName}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        using var response = await broker.CreateClient(new() { AllowAutoRedirect = false, HandleCookies = false }).SendAsync(request);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        GitHub.TokenCallCount.Should().Be(0);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("short")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("../../etc/passwd' OR '1'='1")]
    public async Task Unknown_forged_or_missing_state_is_refused(string? state)
    {
        using var browser = broker.NewBrowser();
        await browser.StartAsync(StandardInstances.TrackeepCallback);
        var url = QueryHelpers.AddQueryString("/auth/github/callback", new Dictionary<string, string?> { ["code"] = "abc", ["state"] = state });

        using var response = await browser.Client.GetAsync(state is null ? "/auth/github/callback?code=abc" : url);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        response.Headers.Location.Should().BeNull();
        GitHub.TokenCallCount.Should().Be(0);
    }

    [Fact]
    public async Task Truncated_state_is_refused()
    {
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);
        var query = QueryHelpers.ParseQuery(new Uri(callback).Query);

        var outcome = await browser.ReturnFromGitHubAsync(
            QueryHelpers.AddQueryString("http://localhost/auth/github/callback", new Dictionary<string, string?> { ["code"] = query["code"], ["state"] = query["state"].ToString()[..42] }));

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Of_100_concurrent_replays_of_one_state_exactly_one_gets_a_token()
    {
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => browser.ReturnFromGitHubAsync(callback)));

        outcomes.Count(outcome => outcome.Query.ContainsKey("token")).Should().Be(1);
        outcomes.Count(outcome => outcome.Response.StatusCode == HttpStatusCode.BadRequest).Should().Be(99);
        GitHub.TokenCallCount.Should().Be(1);
    }

    [Fact]
    public async Task Denied_consent_redirects_to_the_instance_with_access_denied_and_its_state()
    {
        GitHub.Deny = true;
        using var browser = broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback, state: "mine");

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.Redirect);
        outcome.Location!.GetLeftPart(UriPartial.Path).Should().Be(StandardInstances.TrackeepCallback);
        outcome.Query["error"].Should().Be("access_denied");
        outcome.Query["error_description"].Should().NotBeNullOrEmpty();
        outcome.Query["state"].Should().Be("mine");
        outcome.Query.Should().NotContainKey("token");
        GitHub.TokenCallCount.Should().Be(0);
    }

    [Fact]
    public async Task Two_logins_in_parallel_tabs_both_complete()
    {
        using var browser = broker.NewBrowser();

        var first = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback, state: "tab-1");
        var second = await browser.StartAndApproveAsync("https://direct.example.org/cb", state: "tab-2");

        (await browser.ReturnFromGitHubAsync(second)).Query["state"].Should().Be("tab-2");
        (await browser.ReturnFromGitHubAsync(first)).Query["state"].Should().Be("tab-1");
    }

    [Fact]
    public async Task Abandoned_logins_are_purged_in_the_background_once_expired()
    {
        using var browser = broker.NewBrowser();
        for (var i = 0; i < 5; i++)
        {
            await browser.StartAsync(StandardInstances.TrackeepCallback);
        }

        (await CountPendingLoginsAsync()).Should().Be(5);

        clock.Advance(OAuthBroker.Login.PendingLoginStore.Lifetime + OAuthBroker.Login.PendingLoginStore.Retention + OAuthBroker.Storage.PurgeService.Interval);

        await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(10), async () => await CountPendingLoginsAsync() <= 0);

        (await CountPendingLoginsAsync()).Should().Be(0);
    }

    [Fact]
    public async Task Logins_started_in_the_same_millisecond_are_each_found_by_their_own_state()
    {
        // The clock is frozen: every login shares one expiry, so the lookup finds them all and must pick by hash.
        var browsers = Enumerable.Range(0, 5).Select(_ => broker.NewBrowser()).ToList();
        var callbacks = new List<string>();
        for (var i = 0; i < browsers.Count; i++)
        {
            callbacks.Add(await browsers[i].StartAndApproveAsync(StandardInstances.TrackeepCallback, state: $"login-{i}"));
        }

        callbacks.Select(callback => StateOf(callback)[..10]).Distinct().Should().ContainSingle("the first 10 characters are 60 bits of the shared expiry");
        for (var i = browsers.Count - 1; i >= 0; i--)
        {
            (await browsers[i].ReturnFromGitHubAsync(callbacks[i])).Query["state"].Should().Be($"login-{i}");
        }

        browsers.ForEach(browser => browser.Dispose());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(-1)]
    [InlineData(24 * 60 * 60 * 1000)]
    public async Task A_state_whose_expiry_is_edited_is_unknown(long shiftMilliseconds)
    {
        using var browser = broker.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback);
        var state = System.Buffers.Text.Base64Url.DecodeFromChars(StateOf(callback));
        var expiry = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(state);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(state, expiry + shiftMilliseconds);
        var edited = QueryHelpers.AddQueryString("http://localhost/auth/github/callback", new Dictionary<string, string?>
        {
            ["code"] = QueryHelpers.ParseQuery(new Uri(callback).Query)["code"],
            ["state"] = System.Buffers.Text.Base64Url.EncodeToString(state),
        });

        var outcome = await browser.ReturnFromGitHubAsync(edited);

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await outcome.Response.Content.ReadAsStringAsync()).Should().Contain("not known to the broker");
        GitHub.TokenCallCount.Should().Be(0);
        (await browser.ReturnFromGitHubAsync(callback)).Query.Should().ContainKey("token", "the real state is untouched");
    }

    [Fact]
    public async Task Each_login_has_its_own_PKCE_verifier_which_is_neither_the_cookie_nor_stored()
    {
        using var browser = broker.NewBrowser();
        var first = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback, state: "tab-1");
        var firstCookie = browser.LastBindingCookie!.Split('=', 2)[1];
        var second = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback, state: "tab-2");
        var secondCookie = browser.LastBindingCookie!.Split('=', 2)[1];

        (await browser.ReturnFromGitHubAsync(first)).Query.Should().ContainKey("token");
        (await browser.ReturnFromGitHubAsync(second)).Query.Should().ContainKey("token");

        var verifiers = GitHub.TokenRequests.Select(request => request.CodeVerifier!).ToList();
        verifiers.Should().HaveCount(2).And.OnlyHaveUniqueItems();
        verifiers.Should().AllSatisfy(verifier => verifier.Should().MatchRegex("^[A-Za-z0-9_-]{43}$"));
        verifiers.Should().NotContain([firstCookie, secondCookie], "the verifier is derived from the browser's secret under its own label");
        // Disposing the broker scans its data folder and logs for every verifier GitHub received (FakeGitHub.Secrets).
    }

    [Fact]
    public async Task Completed_logins_are_purged_an_hour_after_use()
    {
        using var browser = broker.NewBrowser();
        (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Query.Should().ContainKey("token");
        await browser.StartAsync(StandardInstances.TrackeepCallback);
        (await CountPendingLoginsAsync()).Should().Be(2);

        // Past the retention of the completed login, not yet past the expiry plus retention of the open one.
        clock.Advance(OAuthBroker.Login.PendingLoginStore.Retention + OAuthBroker.Storage.PurgeService.Interval);

        await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(10), async () => await CountPendingLoginsAsync() <= 1);

        (await CountPendingLoginsAsync()).Should().Be(1);
    }

    private static string StateOf(string callback) => QueryHelpers.ParseQuery(new Uri(callback).Query)["state"].ToString();

    private Task<long> CountPendingLoginsAsync() => broker.CountPendingLoginsAsync();

}
