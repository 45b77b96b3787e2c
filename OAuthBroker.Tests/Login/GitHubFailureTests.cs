using System.Net;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Login;

public sealed class GitHubFailureTests : FakeGitHubTest
{
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        GitHub.SlowDelay = TimeSpan.FromSeconds(5);
        broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["GitHub:Timeout"] = "00:00:00.500" });
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Theory]
    [InlineData(TokenFault.ServerError, "temporarily_unavailable", "HTTP 502")]
    [InlineData(TokenFault.Slow, "temporarily_unavailable", "timed out")]
    [InlineData(TokenFault.DropConnection, "temporarily_unavailable", "failed")]
    [InlineData(TokenFault.MalformedJson, "server_error", "not JSON")]
    public async Task Code_exchange_fault_redirects_to_the_instance_with_an_OAuth_error(TokenFault fault, string error, string logged)
    {
        GitHub.TokenFault = fault;

        var outcome = await LoginAsync();

        AssertErrorRedirect(outcome, error);
        broker.Logs.Lines.Should().Contain(line => line.EventId == 2005 && line.Message.Contains(logged, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("bad_verification_code")]
    [InlineData("incorrect_client_credentials")]
    [InlineData("redirect_uri_mismatch")]
    public async Task Code_exchange_error_answered_with_HTTP_200_is_a_failure(string code)
    {
        GitHub.TokenFault = TokenFault.ErrorField;
        GitHub.TokenErrorCode = code;

        var outcome = await LoginAsync();

        AssertErrorRedirect(outcome, "server_error");
        broker.Logs.Lines.Should().Contain(line => line.EventId == 2005 && line.Message.Contains(code, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Wrong_client_secret_is_reported_by_GitHub_and_never_logged()
    {
        await using var misconfigured = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json, new Dictionary<string, string?> { ["GitHub:ClientSecret"] = "wrong-secret-value-1234" });
        using var browser = misconfigured.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback, state: "s1");

        AssertErrorRedirect(outcome, "server_error");
        misconfigured.Logs.AllText.Should().Contain("incorrect_client_credentials").And.NotContain("wrong-secret-value-1234");
    }

    [Theory]
    [InlineData(UserFault.ServerError, "temporarily_unavailable")]
    [InlineData(UserFault.RateLimited, "temporarily_unavailable")]
    [InlineData(UserFault.TooManyRequests, "temporarily_unavailable")]
    [InlineData(UserFault.Unauthorized, "server_error")]
    [InlineData(UserFault.MalformedJson, "server_error")]
    public async Task User_endpoint_fault_redirects_to_the_instance_with_an_OAuth_error(UserFault fault, string error)
    {
        GitHub.UserFault = fault;

        var outcome = await LoginAsync();

        AssertErrorRedirect(outcome, error);
        broker.Logs.Lines.Should().Contain(line => line.EventId == 2005 && line.Message.Contains("/user", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Transient_user_endpoint_failures_are_retried_and_the_login_completes()
    {
        GitHub.UserFailuresBeforeSuccess = 2;
        using var browser = broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback);

        outcome.Query.Should().ContainKey("token");
        GitHub.UserCallCount.Should().Be(3);
    }

    [Fact]
    public async Task A_persistent_user_endpoint_outage_is_retried_within_the_deadline_then_reported()
    {
        GitHub.UserFault = UserFault.ServerError;

        var outcome = await LoginAsync();

        AssertErrorRedirect(outcome, "temporarily_unavailable");
        GitHub.UserCallCount.Should().Be(3, "one try and two retries");
    }

    [Theory]
    [InlineData(UserFault.RateLimited)]
    [InlineData(UserFault.TooManyRequests)]
    [InlineData(UserFault.Unauthorized)]
    public async Task Rate_limits_and_refusals_are_not_retried(UserFault fault)
    {
        GitHub.UserFault = fault;

        await LoginAsync();

        GitHub.UserCallCount.Should().Be(1);
    }

    [Theory]
    [InlineData(TokenFault.ServerError)]
    [InlineData(TokenFault.DropConnection)]
    [InlineData(TokenFault.Slow)]
    public async Task A_failed_code_exchange_is_never_retried(TokenFault fault)
    {
        GitHub.TokenFault = fault;

        var outcome = await LoginAsync();

        AssertErrorRedirect(outcome, "temporarily_unavailable");
        GitHub.TokenCallCount.Should().Be(1, "an authorization code is good for one try");
    }

    [Fact]
    public async Task Unreachable_GitHub_gives_temporarily_unavailable()
    {
        var port = LoopbackPort.Free();
        await using var isolated = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json, new Dictionary<string, string?> { ["GitHub:BaseUrl"] = GitHub.BaseUrl });
        using var browser = isolated.NewBrowser();
        var callback = await browser.StartAndApproveAsync(StandardInstances.TrackeepCallback, state: "s1");
        await using var unreachable = new BrokerFactory(GitHub, isolated.Folder, Instances.Json, new Dictionary<string, string?> { ["GitHub:BaseUrl"] = $"http://127.0.0.1:{port}" });
        using var sameBrowser = new Browser(unreachable);
        sameBrowser.Client.DefaultRequestHeaders.Add("Cookie", browser.LastBindingCookie);

        var outcome = await sameBrowser.ReturnFromGitHubAsync(callback);

        AssertErrorRedirect(outcome, "temporarily_unavailable");
        unreachable.Logs.Lines.Should().Contain(line => line.EventId == 2005 && line.Message.Contains("ConnectionError", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Expiring_OAuth_App_tokens_carry_expires_at()
    {
        GitHub.ExpiringTokens = true;
        using var browser = broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback);

        var jwt = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(outcome.Token);
        var expiresAt = DateTimeOffset.FromUnixTimeSeconds(jwt.GetPayloadValue<long>("expires_at"));
        expiresAt.Should().BeCloseTo(DateTimeOffset.UtcNow.AddHours(8), TimeSpan.FromMinutes(1));
        Instances.Trackeep.Decrypt(jwt.GetPayloadValue<string>("access_token")).Should().StartWith("gho_", "an OAuth App's tokens start gho_ whether they expire or not");
    }

    [Fact]
    public async Task Non_expiring_tokens_have_no_expires_at()
    {
        using var browser = broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback);

        new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(outcome.Token).TryGetPayloadValue<long>("expires_at", out _).Should().BeFalse();
    }

    private async Task<LoginOutcome> LoginAsync()
    {
        using var browser = broker.NewBrowser();
        return await browser.LoginAsync(StandardInstances.TrackeepCallback, state: "s1");
    }

    private void AssertErrorRedirect(LoginOutcome outcome, string error)
    {
        outcome.Response.StatusCode.Should().Be(HttpStatusCode.Redirect, broker.Logs.AllText);
        outcome.Location!.GetLeftPart(UriPartial.Path).Should().Be(StandardInstances.TrackeepCallback);
        outcome.Query["error"].Should().Be(error);
        outcome.Query["error_description"].Should().NotBeNullOrEmpty();
        outcome.Query["state"].Should().Be("s1");
        outcome.Query.Should().NotContainKey("token");
        var logs = broker.Logs.AllText;
        foreach (var secret in GitHub.Secrets)
        {
            logs.Should().NotContain(secret);
        }
    }
}
