using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Allowlist;
using OAuthBroker.GitHub;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tokens;
using OAuthBroker.Users;

namespace OAuthBroker.Tests.Users;

public sealed class UserMeTests : FakeGitHubTest
{
    private readonly FakeTimeProvider clock = new(DateTimeOffset.UtcNow);
    private BrokerFactory broker = null!;
    private string token = "";

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        broker = new BrokerFactory(GitHub, Folder, Instances.Json, clock: clock);
        using var browser = broker.NewBrowser();
        token = (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token;
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task Valid_token_returns_the_profile()
    {
        using var response = await GetMeAsync(token);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        using var profile = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        profile.RootElement.GetProperty("username").GetString().Should().Be(GitHub.User.Login);
        profile.RootElement.GetProperty("github_id").GetInt64().Should().Be(GitHub.User.Id);
        profile.RootElement.GetProperty("email").GetString().Should().Be(GitHub.User.PrimaryEmail);
        profile.RootElement.TryGetProperty("access_token", out _).Should().BeFalse();
    }

    [Fact]
    public async Task Missing_credentials_get_a_bare_Bearer_challenge()
    {
        using var response = await broker.CreateClient().GetAsync("/api/v1/user/me");

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.ToString().Should().Be("Bearer realm=\"oauthbroker\"");
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }

    [Fact]
    public async Task Expired_token_is_refused()
    {
        // The test's token came back in the query, so it lives Broker:UrlTokenLifetime (5 minutes), plus 30 s of skew.
        clock.Advance(TimeSpan.FromMinutes(5) + BrokerTokenValidator.ClockSkew + TimeSpan.FromSeconds(1));

        await AssertRefusedAsync(token);
    }

    [Fact]
    public async Task Token_within_its_lifetime_is_accepted_after_time_passes()
    {
        clock.Advance(TimeSpan.FromMinutes(4));

        using var response = await GetMeAsync(token);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Token_for_an_instance_not_in_the_allowlist_is_refused()
    {
        var issuer = broker.Services.GetRequiredService<BrokerTokenIssuer>();
        var users = broker.Services.GetRequiredService<IUserStore>();
        var user = await users.RecordLoginAsync(new GitHubUser(GitHub.User.Id, GitHub.User.Login, null, null, null), null, default);
        RedirectUri.TryParse("https://gone.example.com/cb", false, out var uri, out _).Should().BeTrue();
        var stranger = new AllowlistInstance("gone-instance", [uri!], FrozenSet<string>.Empty, null);

        var foreignAudience = issuer.Issue(stranger, user, new GitHubToken("gho_x", "bearer", "", null), "form_post");

        await AssertRefusedAsync(foreignAudience);
    }

    [Fact]
    public async Task Token_signed_by_another_key_with_our_kid_is_refused()
    {
        var ours = new JsonWebToken(token);
        using var attackerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = new JsonWebTokenHandler().CreateToken(
            Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(ours.EncodedPayload)),
            new SigningCredentials(new ECDsaSecurityKey(attackerKey) { KeyId = ours.Kid }, SecurityAlgorithms.EcdsaSha256));

        await AssertRefusedAsync(forged);
    }

    [Fact]
    public async Task Unsigned_alg_none_token_is_refused()
    {
        var ours = new JsonWebToken(token);
        var header = Base64UrlEncoder.Encode(JsonSerializer.Serialize(new { alg = "none", typ = "JWT" }));

        await AssertRefusedAsync($"{header}.{ours.EncodedPayload}.");
    }

    [Fact]
    public async Task Altered_payload_is_refused()
    {
        var parts = token.Split('.');
        var payload = JsonSerializer.Deserialize<Dictionary<string, object>>(Base64UrlEncoder.Decode(parts[1]))!;
        payload["username"] = "someone-else";
        payload["github_id"] = 1;
        var altered = $"{parts[0]}.{Base64UrlEncoder.Encode(JsonSerializer.Serialize(payload))}.{parts[2]}";
        altered.Should().NotBe(token);

        await AssertRefusedAsync(altered);
    }

    [Theory]
    [InlineData("not-a-jwt")]
    [InlineData("a.b.c")]
    [InlineData("")]
    public async Task Garbage_is_refused_with_401_not_500(string garbage) => await AssertRefusedAsync(garbage);

    private async Task AssertRefusedAsync(string bearer)
    {
        using var response = await GetMeAsync(bearer);
        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.ToString().Should().StartWith("Bearer");
    }

    private async Task<HttpResponseMessage> GetMeAsync(string bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
        return await broker.CreateClient().SendAsync(request);
    }
}
