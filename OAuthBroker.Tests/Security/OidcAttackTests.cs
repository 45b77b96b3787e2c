using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Security;

/// <summary>
/// The OpenID Connect face under attack: each check of /oauth/authorize and of the code's redemption has a test that
/// fails without it. Two confidential clients (A, B) and a public one (P) on one broker; K receives the GitHub token,
/// R and S its refresh token too.
/// </summary>
public sealed class OidcAttackTests : FakeGitHubTest
{
    private const string CallbackA = "https://a.example.com/oidc/callback";
    private const string CallbackB = "https://b.example.com/oidc/callback";
    private const string CallbackP = "https://p.example.com/oidc/callback";
    private const string CallbackK = "https://k.example.com/oidc/callback";
    private const string CallbackR = "https://r.example.com/oidc/callback";
    private static readonly string SecretA = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
    private static readonly string SecretB = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
    private readonly InstanceKey keyK = InstanceKey.Rsa();
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var document = new JsonObject
        {
            ["instances"] = new JsonArray(
                Entry("client-a", CallbackA, new JsonObject { ["clientSecret"] = Hash(SecretA), ["postLogoutRedirectUris"] = new JsonArray("https://a.example.com/signed-out") }),
                Entry("client-b", CallbackB, new JsonObject { ["clientSecret"] = Hash(SecretB) }),
                Entry("client-p", CallbackP, new JsonObject { ["public"] = true }),
                Entry("client-k", CallbackK, new JsonObject { ["clientSecret"] = Hash(SecretA), ["deliverAccessToken"] = true, ["encryptionKey"] = System.Text.Json.JsonSerializer.SerializeToNode(keyK.PublicJwk) }),
                Entry("client-r", CallbackR, new JsonObject { ["clientSecret"] = Hash(SecretA), ["deliverAccessToken"] = true, ["refresh"] = true, ["encryptionKey"] = System.Text.Json.JsonSerializer.SerializeToNode(keyK.PublicJwk) }),
                Entry("client-s", "https://s.example.com/oidc/callback", new JsonObject { ["clientSecret"] = Hash(SecretB), ["deliverAccessToken"] = true, ["refresh"] = true, ["encryptionKey"] = System.Text.Json.JsonSerializer.SerializeToNode(keyK.PublicJwk) })),
        };
        broker = new BrokerFactory(GitHub, Folder, document.ToJsonString());
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task A_bad_client_id_or_redirect_uri_gets_the_400_page_and_never_a_redirect()
    {
        using var browser = broker.NewBrowser();
        foreach (var query in new[]
        {
            Authorize("nobody", CallbackA),
            Authorize("client-a", CallbackB),
            Authorize("client-a", "https://a.example.com/elsewhere"),
            Authorize("client-a", CallbackA) + "&client_id=client-b",
            Authorize("client-a", null),
        })
        {
            using var response = await browser.Client.GetAsync(query);
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest, query);
            response.Headers.Location.Should().BeNull();
        }

        GitHub.AuthorizeRequests.Should().BeEmpty();
    }

    [Theory]
    [InlineData("response_type=token", "unsupported_response_type")]
    [InlineData("prompt=none", "login_required")]
    [InlineData("code_challenge_method=plain&code_challenge=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "invalid_request")]
    [InlineData("code_challenge_method=S256", "invalid_request")]
    [InlineData("scope=openid+github:admin:org", "invalid_scope")]
    [InlineData("nonce=", "invalid_request")]
    public async Task Later_errors_go_back_to_the_validated_redirect_uri_with_state_and_iss(string extra, string error)
    {
        using var browser = broker.NewBrowser();
        var query = Authorize("client-a", CallbackA, responseType: extra.StartsWith("response_type", StringComparison.Ordinal) ? null : "code", scope: extra.StartsWith("scope", StringComparison.Ordinal) ? null : "openid") + "&" + extra;

        using var response = await browser.Client.GetAsync(query);

        response.StatusCode.Should().Be(HttpStatusCode.Redirect, await response.Content.ReadAsStringAsync());
        var location = response.Headers.Location!;
        location.GetLeftPart(UriPartial.Path).Should().Be(CallbackA);
        var answer = QueryHelpers.ParseQuery(location.Query);
        answer["error"].ToString().Should().Be(error);
        answer["state"].ToString().Should().Be("client-state");
        answer["iss"].ToString().Should().Be(broker.PublicUrl.TrimEnd('/'));
        GitHub.AuthorizeRequests.Should().BeEmpty();
    }

    [Fact]
    public async Task The_GitHub_token_of_a_code_is_encrypted_to_the_client_and_the_client_may_revoke_it()
    {
        var (code, verifier) = await CodeAsync("client-k", CallbackK);
        using var redeemed = await RedeemAsync("client-k", SecretA, code, CallbackK, verifier);
        var tokens = await redeemed.Content.ReadFromJsonAsync<JsonObject>();
        var gitHubToken = keyK.Decrypt((string)tokens!["github_access_token"]!);
        GitHub.IsLive(gitHubToken).Should().BeTrue();

        using var client = broker.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/revoke") { Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = gitHubToken }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"client-k:{SecretA}")));
        using var revoked = await client.SendAsync(request);

        revoked.StatusCode.Should().Be(HttpStatusCode.OK, await revoked.Content.ReadAsStringAsync());
        GitHub.IsLive(gitHubToken).Should().BeFalse();
    }

    [Fact]
    public async Task Logout_redirects_only_to_a_registered_post_logout_uri_of_the_client_the_hint_or_client_id_names()
    {
        var (code, verifier) = await CodeAsync("client-a", CallbackA);
        using var redeemed = await RedeemAsync("client-a", SecretA, code, CallbackA, verifier);
        var idToken = (string)(await redeemed.Content.ReadFromJsonAsync<JsonObject>())!["id_token"]!;
        using var browser = broker.NewBrowser();
        string Logout(params (string Name, string Value)[] parameters) =>
            QueryHelpers.AddQueryString("/oauth/logout", parameters.Select(pair => new KeyValuePair<string, string?>(pair.Name, pair.Value)));

        using (var back = await browser.Client.GetAsync(Logout(("id_token_hint", idToken), ("post_logout_redirect_uri", "https://a.example.com/signed-out"), ("state", "bye"))))
        {
            back.StatusCode.Should().Be(HttpStatusCode.Redirect);
            back.Headers.Location!.ToString().Should().Be("https://a.example.com/signed-out?state=bye");
        }

        using (var byClientId = await browser.Client.GetAsync(Logout(("client_id", "client-a"), ("post_logout_redirect_uri", "https://a.example.com/signed-out"))))
        {
            byClientId.StatusCode.Should().Be(HttpStatusCode.Redirect);
        }

        foreach (var refused in new[]
        {
            Logout(("id_token_hint", idToken), ("post_logout_redirect_uri", "https://evil.example.net/")),
            Logout(("id_token_hint", idToken), ("client_id", "client-b"), ("post_logout_redirect_uri", "https://a.example.com/signed-out")),
            Logout(("id_token_hint", idToken[..^4] + "AAAA"), ("post_logout_redirect_uri", "https://a.example.com/signed-out")),
            Logout(("post_logout_redirect_uri", "https://a.example.com/signed-out")),
            Logout(("client_id", "client-b"), ("post_logout_redirect_uri", "https://a.example.com/signed-out")),
        })
        {
            using var response = await browser.Client.GetAsync(refused);
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest, refused);
            response.Headers.Location.Should().BeNull();
        }

        using var page = await browser.Client.GetAsync(Logout(("id_token_hint", idToken)));
        page.StatusCode.Should().Be(HttpStatusCode.OK);
        (await page.Content.ReadAsStringAsync()).Should().Contain("id=\"signed-out\"");
    }

    [Fact]
    public async Task A_public_client_must_send_PKCE()
    {
        using var browser = broker.NewBrowser();
        using var response = await browser.Client.GetAsync(Authorize("client-p", CallbackP));
        QueryHelpers.ParseQuery(response.Headers.Location!.Query)["error"].ToString().Should().Be("invalid_request");
    }

    [Fact]
    public async Task A_code_is_redeemed_once_and_a_replay_revokes_the_access_token_the_first_redemption_issued()
    {
        var (code, verifier) = await CodeAsync("client-a", CallbackA);
        using var first = await RedeemAsync("client-a", SecretA, code, CallbackA, verifier);
        first.StatusCode.Should().Be(HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        var tokens = await first.Content.ReadFromJsonAsync<JsonObject>();
        var accessToken = (string)tokens!["access_token"]!;
        (await UserInfoAsync(accessToken)).StatusCode.Should().Be(HttpStatusCode.OK);

        using var replay = await RedeemAsync("client-a", SecretA, code, CallbackA, verifier);

        replay.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        ((string?)(await replay.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_grant");
        (await UserInfoAsync(accessToken)).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "the replay revoked what the code issued");
    }

    [Fact]
    public async Task A_code_of_client_A_is_refused_to_client_B_and_stays_good_for_A()
    {
        var (code, verifier) = await CodeAsync("client-a", CallbackA);

        using var stolen = await RedeemAsync("client-b", SecretB, code, CallbackA, verifier);

        stolen.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        using var own = await RedeemAsync("client-a", SecretA, code, CallbackA, verifier);
        own.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_redirect_uri_other_than_the_codes_is_refused_at_the_token_endpoint()
    {
        var (code, verifier) = await CodeAsync("client-a", CallbackA);
        using var response = await RedeemAsync("client-a", SecretA, code, "https://a.example.com/other", verifier);
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        ((string?)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_grant");
    }

    [Fact]
    public async Task PKCE_cannot_be_dropped_swapped_or_added_after_the_fact()
    {
        var (code, _) = await CodeAsync("client-a", CallbackA);
        using (var without = await RedeemAsync("client-a", SecretA, code, CallbackA, verifier: null))
        {
            without.StatusCode.Should().Be(HttpStatusCode.BadRequest, "a challenge was sent, so the verifier is required");
        }

        var (another, _) = await CodeAsync("client-a", CallbackA);
        using (var wrong = await RedeemAsync("client-a", SecretA, another, CallbackA, Verifier()))
        {
            wrong.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        }

        // Downgrade: no challenge at the authorization request, a verifier at the token endpoint (RFC 9700 2.1.1).
        var (plain, _) = await CodeAsync("client-a", CallbackA, pkce: false);
        using var added = await RedeemAsync("client-a", SecretA, plain, CallbackA, Verifier());
        added.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task The_ID_token_carries_this_requests_nonce_and_the_broker_as_issuer_and_is_no_broker_JWT()
    {
        var (code, verifier) = await CodeAsync("client-a", CallbackA, nonce: "nonce-of-this-request");
        using var response = await RedeemAsync("client-a", SecretA, code, CallbackA, verifier);
        var tokens = await response.Content.ReadFromJsonAsync<JsonObject>();
        var idToken = new JsonWebToken((string)tokens!["id_token"]!);

        idToken.GetPayloadValue<string>("nonce").Should().Be("nonce-of-this-request");
        idToken.Issuer.Should().Be(broker.PublicUrl.TrimEnd('/'));
        idToken.Audiences.Should().Equal("client-a");
        idToken.GetPayloadValue<string>("at_hash").Should().NotBeNullOrEmpty();
        using var client = broker.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", (string)tokens["id_token"]!);
        (await client.SendAsync(request)).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "an ID token is not a broker JWT");
        (await UserInfoAsync((string)tokens["id_token"]!)).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "nor an access token");
    }

    [Fact]
    public async Task Oversized_and_malformed_parameters_are_refused()
    {
        using var browser = broker.NewBrowser();
        using (var longState = await browser.Client.GetAsync(Authorize("client-a", CallbackA, state: null) + "&state=" + new string('s', 600)))
        {
            QueryHelpers.ParseQuery(longState.Headers.Location!.Query)["error"].ToString().Should().Be("invalid_request");
        }

        using (var longNonce = await browser.Client.GetAsync(Authorize("client-a", CallbackA) + "&nonce=" + new string('n', 300)))
        {
            QueryHelpers.ParseQuery(longNonce.Headers.Location!.Query)["error"].ToString().Should().Be("invalid_request");
        }

        using var oversizedCode = await RedeemAsync("client-a", SecretA, new string('c', 500), CallbackA, Verifier());
        ((string?)(await oversizedCode.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_request");
        using var badVerifier = await RedeemAsync("client-a", SecretA, "some-code", CallbackA, "short");
        ((string?)(await badVerifier.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_request");
    }

    [Fact]
    public async Task An_OIDC_client_refreshes_with_its_sealed_refresh_token_and_gets_a_token_response_of_the_same_sign_in()
    {
        GitHub.ExpiringTokens = true;
        var (code, verifier) = await CodeAsync("client-r", CallbackR, nonce: "nonce-of-the-sign-in");
        using var redeemed = await RedeemAsync("client-r", SecretA, code, CallbackR, verifier);
        var first = (await redeemed.Content.ReadFromJsonAsync<JsonObject>())!;
        var refreshToken = (string)first["refresh_token"]!;
        refreshToken.Should().StartWith("obr_");
        GitHub.Secrets.Should().NotContain(secret => refreshToken.Contains(secret, StringComparison.Ordinal), "GitHub's refresh token is sealed, never handed over as it is");
        var firstGitHubToken = keyK.Decrypt((string)first["github_access_token"]!);
        var firstIdToken = new JsonWebToken((string)first["id_token"]!);

        using var refreshed = await RefreshAsync("client-r", SecretA, refreshToken);

        refreshed.StatusCode.Should().Be(HttpStatusCode.OK, await refreshed.Content.ReadAsStringAsync());
        refreshed.Headers.CacheControl!.NoStore.Should().BeTrue();
        var second = (await refreshed.Content.ReadFromJsonAsync<JsonObject>())!;
        ((string?)second["scope"]).Should().Be((string?)first["scope"]);
        var idToken = new JsonWebToken((string)second["id_token"]!);
        idToken.Subject.Should().Be(firstIdToken.Subject);
        idToken.Audiences.Should().Equal("client-r");
        idToken.GetPayloadValue<long>("auth_time").Should().Be(firstIdToken.GetPayloadValue<long>("auth_time"), "OpenID Connect Core 12.2: the time of the original sign-in");
        idToken.TryGetPayloadValue<string>("nonce", out _).Should().BeFalse();
        var gitHubToken = keyK.Decrypt((string)second["github_access_token"]!);
        GitHub.IsLive(gitHubToken).Should().BeTrue();
        GitHub.IsLive(firstGitHubToken).Should().BeFalse("GitHub ends the old access token at the refresh");
        (await UserInfoAsync((string)second["access_token"]!)).StatusCode.Should().Be(HttpStatusCode.OK);
        var nextRefreshToken = (string)second["refresh_token"]!;
        nextRefreshToken.Should().StartWith("obr_").And.NotBe(refreshToken);

        using var again = await RefreshAsync("client-r", SecretA, nextRefreshToken);
        again.StatusCode.Should().Be(HttpStatusCode.OK);
        GitHub.RefreshCallCount.Should().Be(2);
        var third = (await again.Content.ReadFromJsonAsync<JsonObject>())!;
        var issued = new[] { first, second, third }.SelectMany(tokens => new[] { (string)tokens["access_token"]!, (string)tokens["refresh_token"]! });
        SecretScan.AssertAbsent(GitHub.Secrets.Concat(issued), broker.Logs.AllText, broker.DataPath, TestDatabase.PostgresDatabaseFor(Folder.Path));
    }

    [Fact]
    public async Task An_OIDC_refresh_token_is_refused_to_another_client_and_when_tampered_with_and_stays_good_for_its_own()
    {
        GitHub.ExpiringTokens = true;
        var (code, verifier) = await CodeAsync("client-r", CallbackR);
        using var redeemed = await RedeemAsync("client-r", SecretA, code, CallbackR, verifier);
        var refreshToken = (string)(await redeemed.Content.ReadFromJsonAsync<JsonObject>())!["refresh_token"]!;

        foreach (var (client, secret, presented) in new[]
        {
            ("client-s", SecretB, refreshToken),
            ("client-r", SecretA, refreshToken[..^6] + (refreshToken[^6..] == "AAAAAA" ? "BBBBBB" : "AAAAAA")),
            ("client-r", SecretA, "obr_" + new string('A', 5000)),
        })
        {
            using var refused = await RefreshAsync(client, secret, presented);
            refused.StatusCode.Should().Be(HttpStatusCode.BadRequest, client);
            ((string?)(await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_grant");
        }

        GitHub.RefreshCallCount.Should().Be(0);
        using var own = await RefreshAsync("client-r", SecretA, refreshToken);
        own.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_replayed_code_revokes_the_refresh_tokens_of_its_sign_in_and_the_access_tokens_they_issued()
    {
        GitHub.ExpiringTokens = true;
        var (code, verifier) = await CodeAsync("client-r", CallbackR);
        using var redeemed = await RedeemAsync("client-r", SecretA, code, CallbackR, verifier);
        using var refreshed = await RefreshAsync("client-r", SecretA, (string)(await redeemed.Content.ReadFromJsonAsync<JsonObject>())!["refresh_token"]!);
        var tokens = (await refreshed.Content.ReadFromJsonAsync<JsonObject>())!;

        using var replay = await RedeemAsync("client-r", SecretA, code, CallbackR, verifier);

        replay.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await UserInfoAsync((string)tokens["access_token"]!)).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "a refresh's access token belongs to the code's grant");
        using var refused = await RefreshAsync("client-r", SecretA, (string)tokens["refresh_token"]!);
        refused.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        ((string?)(await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]).Should().Be("invalid_grant");
        GitHub.RefreshCallCount.Should().Be(1);
    }

    private async Task<(string Code, string? Verifier)> CodeAsync(string clientId, string callback, bool pkce = true, string nonce = "n-0S6_WzA2Mj")
    {
        using var browser = broker.NewBrowser();
        var verifier = pkce ? Verifier() : null;
        var query = Authorize(clientId, callback, nonce: nonce, challenge: verifier is null ? null : Challenge(verifier));
        using var start = await browser.Client.GetAsync(query);
        start.StatusCode.Should().Be(HttpStatusCode.Redirect, await start.Content.ReadAsStringAsync());
        var back = await browser.ReturnFromGitHubAsync(await Browser.ApproveAtGitHubAsync(start.Headers.Location!));
        back.Query["state"].Should().Be("client-state");
        back.Query["iss"].Should().Be(broker.PublicUrl.TrimEnd('/'));
        return (back.Query["code"], verifier);
    }

    private Task<HttpResponseMessage> RedeemAsync(string clientId, string secret, string code, string redirectUri, string? verifier)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = redirectUri };
        if (verifier is not null)
        {
            form["code_verifier"] = verifier;
        }

        return TokenEndpointAsync(clientId, secret, form);
    }

    private Task<HttpResponseMessage> RefreshAsync(string clientId, string secret, string refreshToken) =>
        TokenEndpointAsync(clientId, secret, new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken });

    private async Task<HttpResponseMessage> TokenEndpointAsync(string clientId, string secret, Dictionary<string, string> form)
    {
        using var client = broker.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{secret}")));
        return await client.SendAsync(request);
    }

    private async Task<HttpResponseMessage> UserInfoAsync(string accessToken)
    {
        using var client = broker.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/oauth/userinfo");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        return await client.SendAsync(request);
    }

    private static string Authorize(string clientId, string? redirectUri, string? responseType = "code", string? nonce = null, string? challenge = null, string? scope = "openid profile", string? state = "client-state")
    {
        var parameters = new Dictionary<string, string?> { ["client_id"] = clientId };
        if (scope is not null)
        {
            parameters["scope"] = scope;
        }

        if (state is not null)
        {
            parameters["state"] = state;
        }

        if (redirectUri is not null)
        {
            parameters["redirect_uri"] = redirectUri;
        }

        if (responseType is not null)
        {
            parameters["response_type"] = responseType;
        }

        if (nonce is not null)
        {
            parameters["nonce"] = nonce;
        }

        if (challenge is not null)
        {
            parameters["code_challenge"] = challenge;
            parameters["code_challenge_method"] = "S256";
        }

        return QueryHelpers.AddQueryString("/oauth/authorize", parameters);
    }

    private static string Verifier() => Jose.Base64Url.Encode(RandomNumberGenerator.GetBytes(32));

    private static string Challenge(string verifier) => Jose.Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));

    private static string Hash(string secret) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static JsonObject Entry(string id, string callback, JsonObject extra)
    {
        var entry = new JsonObject { ["id"] = id, ["redirectUris"] = new JsonArray(callback), ["deliverAccessToken"] = false };
        foreach (var (name, value) in extra)
        {
            entry[name] = value?.DeepClone();
        }

        return entry;
    }
}
