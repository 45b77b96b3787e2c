using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Tokens;

/// <summary>
/// The refresh relay at POST /oauth/token: an instance presents GitHub's refresh token (from its JWT) with its own
/// client credentials, and the broker adds the client secret only it holds. GitHub's refresh tokens are single use.
/// </summary>
public sealed class RefreshRelayTests : TokenLifecycleTest
{
    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        GitHub.ExpiringTokens = true;
        Broker = new BrokerFactory(GitHub, Folder, AllowlistWithRefresh());
    }

    [Fact]
    public async Task Login_then_refresh_rotates_both_tokens_the_old_ones_die_and_the_new_refresh_token_refreshes_again()
    {
        var login = await LoginAsync();
        login.GetPayloadValue<string>("provider").Should().Be("oauth-app");
        login.GetPayloadValue<long>("refresh_token_expires_at").Should().BeGreaterThan(DateTimeOffset.UtcNow.AddDays(180).ToUnixTimeSeconds());
        var (access, refresh) = Tokens(login);
        refresh.Should().StartWith("ghr_");

        using var first = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);

        first.StatusCode.Should().Be(HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        first.Headers.CacheControl!.NoStore.Should().BeTrue();
        var answer = await first.Content.ReadFromJsonAsync<JsonObject>();
        ((string?)answer!["user"]).Should().Be(GitHub.User.Login);
        var renewed = await VerifiedAsync((string)answer["token"]!);
        renewed.Audiences.Should().Equal("trackeep-home");
        renewed.Subject.Should().Be(login.Subject);
        var (newAccess, newRefresh) = Tokens(renewed);
        newAccess.Should().NotBe(access);
        newRefresh.Should().NotBe(refresh);
        GitHub.IsLive(access).Should().BeFalse("GitHub ends the old access token at the refresh");
        GitHub.IsLive(newAccess).Should().BeTrue();

        using var second = await RefreshAsync(newRefresh, "trackeep-home", TrackeepSecret);
        second.StatusCode.Should().Be(HttpStatusCode.OK);
        GitHub.RefreshCallCount.Should().Be(2);
        GitHub.IsLive(newAccess).Should().BeFalse();
    }

    [Fact]
    public async Task Fifty_concurrent_refreshes_of_one_token_make_one_GitHub_call_and_all_get_the_same_answer()
    {
        var (_, refresh) = Tokens(await LoginAsync());
        GitHub.RefreshDelay = TimeSpan.FromMilliseconds(500);

        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            using var response = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }));

        responses.Select(response => response.StatusCode).Should().AllBeEquivalentTo(HttpStatusCode.OK, responses[0].Body);
        responses.Select(response => response.Body).Distinct().Should().ContainSingle("every request gets the one answer");
        GitHub.RefreshCallCount.Should().Be(1);
        var (newAccess, _) = Tokens(await VerifiedAsync((string)JsonNode.Parse(responses[0].Body)!["token"]!));
        GitHub.IsLive(newAccess).Should().BeTrue("the token the answer carries works");
    }

    [Fact]
    public async Task A_refresh_token_presented_by_another_instance_is_refused_and_stays_usable_by_its_own()
    {
        var (_, refresh) = Tokens(await LoginAsync());

        using var stolen = await RefreshAsync(refresh, "legacy-rsa", LegacySecret);

        stolen.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        ((string?)(await stolen.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_grant");
        GitHub.RefreshCallCount.Should().Be(0, "the token never reaches GitHub, so it is not spent");
        using var own = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);
        own.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Every_client_authentication_failure_gets_invalid_client_and_spends_nothing()
    {
        var (_, refresh) = Tokens(await LoginAsync());
        var form = new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refresh };
        var basicWrong = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("trackeep-home:" + LegacySecret)));
        var basicUnknown = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("nobody:" + TrackeepSecret)));
        var basicMalformed = new AuthenticationHeaderValue("Basic", "not base64!");
        var basicRight = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("trackeep-home:" + TrackeepSecret)));
        (AuthenticationHeaderValue? Header, Dictionary<string, string> Form, bool Basic)[] attempts =
        [
            (null, form, false),
            (basicWrong, form, true),
            (basicUnknown, form, true),
            (basicMalformed, form, true),
            (null, new(form) { ["client_id"] = "trackeep-home", ["client_secret"] = LegacySecret }, false),
            (null, new(form) { ["client_id"] = "login-only", ["client_secret"] = TrackeepSecret }, false),
            (basicRight, new(form) { ["client_id"] = "trackeep-home", ["client_secret"] = TrackeepSecret }, true),
        ];

        foreach (var (header, body, basic) in attempts)
        {
            using var response = await PostAsync(body, header);
            response.StatusCode.Should().Be(HttpStatusCode.Unauthorized, $"{header} {string.Join(',', body.Keys)}");
            ((string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_client");
            (response.Headers.WwwAuthenticate.Count > 0).Should().Be(basic);
        }

        GitHub.RefreshCallCount.Should().Be(0);
        using var posted = await PostAsync(new(form) { ["client_id"] = "trackeep-home", ["client_secret"] = TrackeepSecret }, null);
        posted.StatusCode.Should().Be(HttpStatusCode.OK, "client_secret_post is accepted too");
    }

    [Fact]
    public async Task A_client_secret_made_by_the_command_line_replaces_the_old_one_and_is_never_stored()
    {
        var (_, refresh) = Tokens(await LoginAsync());

        var made = await AdminCli.RunProcessAsync(Broker, "allowlist", "client-secret", "trackeep-home");

        made.ExitCode.Should().Be(0, made.Error);
        var secret = made.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Last();
        secret.Should().MatchRegex("^[0-9a-f]{64}$");
        var stored = await Broker.ReadStoredAllowlistAsync();
        stored.Should().NotContain(secret).And.Contain("sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret))));
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () =>
        {
            using var old = await RefreshAsync("ghr_not-a-token", "trackeep-home", TrackeepSecret);
            return old.StatusCode == HttpStatusCode.Unauthorized;
        })).Should().BeTrue("the old secret stops working once the broker has the edit");

        using var response = await RefreshAsync(refresh, "trackeep-home", secret);
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        SecretScan.AssertAbsent([secret], Broker.Logs.AllText, Broker.DataPath, TestDatabase.PostgresDatabaseFor(Folder.Path));
    }

    [Fact]
    public async Task An_instance_revokes_the_GitHub_token_it_was_given_and_no_other_instance_can()
    {
        GitHub.ExpiringTokens = false;
        var access = Instances.Trackeep.Decrypt((await LoginAsync()).GetPayloadValue<string>("access_token"));

        using (var stolen = await RevokeAsync(access, "legacy-rsa", LegacySecret))
        {
            stolen.StatusCode.Should().Be(HttpStatusCode.BadRequest);
            ((string?)(await stolen.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_grant");
        }

        GitHub.RevokeCallCount.Should().Be(0);
        GitHub.IsLive(access).Should().BeTrue();
        using (var wrongSecret = await RevokeAsync(access, "trackeep-home", LegacySecret))
        {
            wrongSecret.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }

        using (var revoked = await RevokeAsync(access, "trackeep-home", TrackeepSecret))
        {
            revoked.StatusCode.Should().Be(HttpStatusCode.OK, await revoked.Content.ReadAsStringAsync());
        }

        GitHub.IsLive(access).Should().BeFalse("GitHub ended the token");
        using (var again = await RevokeAsync(access, "trackeep-home", TrackeepSecret))
        {
            again.StatusCode.Should().Be(HttpStatusCode.OK, "revoking a revoked token succeeds (RFC 7009)");
        }

        var audit = await Broker.ScalarAsync("SELECT COUNT(*) FROM audit_events WHERE kind = 'token' AND action = 'revoked' AND instance_id = 'trackeep-home'");
        audit.Should().Be(2);
    }

    [Fact]
    public async Task Revoking_an_access_token_ends_the_refresh_token_issued_with_it_even_where_GitHub_keeps_it()
    {
        // GitHub documents DELETE /applications/{client_id}/token as revoking that one token: the fake keeps the
        // refresh token alive, and the broker must stop relaying it (RFC 7009 section 2.1), as the docs promise.
        var (access, refresh) = Tokens(await LoginAsync());
        var (otherAccess, otherRefresh) = Tokens(await LoginAsync());

        using (var revoked = await RevokeAsync(access, "trackeep-home", TrackeepSecret))
        {
            revoked.StatusCode.Should().Be(HttpStatusCode.OK, await revoked.Content.ReadAsStringAsync());
        }

        GitHub.IsLive(access).Should().BeFalse();
        GitHub.IsLiveRefreshToken(refresh).Should().BeTrue("this GitHub keeps the refresh token");
        using var refused = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);
        refused.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var error = await refused.Content.ReadFromJsonAsync<JsonObject>();
        ((string?)error!["error"]).Should().Be("invalid_grant");
        ((string?)error["error_description"]).Should().Contain("revoked with its access token");
        GitHub.RefreshCallCount.Should().Be(0, "GitHub is not asked");

        using var other = await RefreshAsync(otherRefresh, "trackeep-home", TrackeepSecret);
        other.StatusCode.Should().Be(HttpStatusCode.OK, "another sign-in's refresh token lives on");
        _ = otherAccess;
    }

    [Theory]
    [InlineData(200)]
    [InlineData(400)]
    public async Task A_refresh_token_GitHub_no_longer_honours_gets_invalid_grant_whatever_status_GitHub_answers_with(int status)
    {
        var (_, refresh) = Tokens(await LoginAsync());
        GitHub.RefreshErrorStatus = status;
        // Spent elsewhere: GitHub now answers bad_refresh_token.
        using (var direct = new HttpClient())
        {
            using var spent = await direct.PostAsync(GitHub.BaseUrl + "/login/oauth/access_token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["client_id"] = FakeGitHub.ClientId, ["client_secret"] = GitHub.ClientSecret, ["grant_type"] = "refresh_token", ["refresh_token"] = refresh,
            }));
            spent.StatusCode.Should().Be(HttpStatusCode.OK);
        }

        using var response = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        ((string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_grant");
        using var again = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);
        again.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        GitHub.RefreshCallCount.Should().Be(2, "the direct refresh and the broker's one: a repeat gets the stored answer");
    }

    [Fact]
    public async Task A_GitHub_outage_gets_503_with_Retry_After_and_the_token_stays_usable()
    {
        var (_, refresh) = Tokens(await LoginAsync());
        GitHub.RefreshUnavailable = true;

        using var outage = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);

        outage.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        outage.Headers.RetryAfter!.Delta.Should().BeGreaterThan(TimeSpan.Zero);
        ((string?)(await outage.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("temporarily_unavailable");
        GitHub.RefreshUnavailable = false;
        using var later = await RefreshAsync(refresh, "trackeep-home", TrackeepSecret);
        later.StatusCode.Should().Be(HttpStatusCode.OK, "the claim was given back: the token was not spent");
    }

    [Fact]
    public async Task Refresh_is_refused_for_an_entry_without_it_and_for_a_disabled_instance_and_no_secret_is_logged_or_stored()
    {
        var (_, refresh) = Tokens(await LoginAsync());
        await Broker.ReplaceAllowlistAsync(AllowlistWithRefresh(switchedOff: true));
        using var browser = Broker.NewBrowser();
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () =>
        {
            using var start = await browser.StartAsync(StandardInstances.TrackeepCallback);
            return start.StatusCode == HttpStatusCode.Forbidden;
        })).Should().BeTrue("the broker has the edit");

        foreach (var (clientId, secret) in new[] { ("trackeep-home", TrackeepSecret), ("legacy-rsa", LegacySecret) })
        {
            using var response = await RefreshAsync(refresh, clientId, secret);
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
            ((string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("unauthorized_client", clientId);
        }

        GitHub.RefreshCallCount.Should().Be(0);

        using (var unsupported = await PostAsync(new() { ["grant_type"] = "password", ["client_id"] = "legacy-rsa", ["client_secret"] = LegacySecret }, null))
        {
            ((string?)(await unsupported.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("unsupported_grant_type");
        }

        SecretScan.AssertAbsent(GitHub.Secrets.Append(TrackeepSecret).Append(LegacySecret), Broker.Logs.AllText, Broker.DataPath, TestDatabase.PostgresDatabaseFor(Folder.Path));
    }

    /// <summary>Refresh for trackeep-home and legacy-rsa; <paramref name="switchedOff"/>: trackeep-home disabled, legacy-rsa without refresh.</summary>
    private string AllowlistWithRefresh(bool switchedOff = false)
    {
        var document = JsonNode.Parse(Instances.Json)!;
        foreach (var entry in document["instances"]!.AsArray().OfType<JsonObject>())
        {
            var secret = (string?)entry["id"] switch { "trackeep-home" => TrackeepSecret, "legacy-rsa" => LegacySecret, _ => null };
            if (secret is null)
            {
                continue;
            }

            entry["refresh"] = !(switchedOff && (string?)entry["id"] == "legacy-rsa");
            entry["clientSecret"] = SecretEntry(secret);
            if (switchedOff && (string?)entry["id"] == "trackeep-home")
            {
                entry["disabled"] = true;
            }
        }

        return document.ToJsonString();
    }
}
