using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tokens;

namespace OAuthBroker.Tests.Tokens;

public sealed class KeyRotationTests : FakeGitHubTest
{
    private readonly FakeTimeProvider clock = new(DateTimeOffset.UtcNow);
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        // Rotation outlasts a URL token's 5 minutes: here every token lives the full hour, as a form_post one does.
        broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Broker:UrlTokenLifetime"] = "01:00:00" }, clock: clock);
        _ = broker.Server;
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task A_rotation_publishes_the_new_key_at_once_and_signs_with_it_once_cached_JWKS_have_expired()
    {
        using var browser = broker.NewBrowser();
        var before = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        var rotated = await Store.RotateAsync(compromised: false, default);
        var meanwhile = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        var jwksAtOnce = await KeyIdsInJwksAsync();
        clock.Advance(SigningKeyStore.PublicationLead - TimeSpan.FromSeconds(1));
        var lastOld = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        clock.Advance(TimeSpan.FromSeconds(1));
        var after = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        rotated.KeyId.Should().NotBe(before.Kid);
        jwksAtOnce.Should().BeEquivalentTo([before.Kid, rotated.KeyId], "instances must be able to fetch the key before it signs");
        meanwhile.Kid.Should().Be(before.Kid);
        lastOld.Kid.Should().Be(before.Kid, "an instance may hold a JWKS fetched just before the new key appeared, for the cache lifetime");
        after.Kid.Should().Be(rotated.KeyId);
        SigningKeyStore.PublicationLead.Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(await JwksMaxAgeAsync()) + SigningKeyRefresher.Interval);
        (await GetMeAsync(before.EncodedToken)).Should().Be(HttpStatusCode.OK);
        (await GetMeAsync(after.EncodedToken)).Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_rotation_for_a_compromised_key_signs_at_once_and_withdraws_the_old_key_at_once()
    {
        using var browser = broker.NewBrowser();
        var before = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        var rotated = await Store.RotateAsync(compromised: true, default);
        var after = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        after.Kid.Should().Be(rotated.KeyId);
        (await KeyIdsInJwksAsync()).Should().Equal(rotated.KeyId);
        (await GetMeAsync(before.EncodedToken)).Should().Be(HttpStatusCode.Unauthorized, "a token signed with a compromised key may be forged");
        (await GetMeAsync(after.EncodedToken)).Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_retired_key_leaves_the_JWKS_once_every_token_it_signed_has_expired()
    {
        using var browser = broker.NewBrowser();
        var old = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        await Store.RotateAsync(compromised: false, default);

        // The old key signs until the new one takes over, then its last tokens live for the token lifetime.
        clock.Advance(SigningKeyStore.PublicationLead + TimeSpan.FromMinutes(59));
        await Store.LoadAsync(default);
        (await KeyIdsInJwksAsync()).Should().Contain(old.Kid, "a token it signed may still be valid");

        clock.Advance(TimeSpan.FromMinutes(2));
        await Store.LoadAsync(default);
        (await KeyIdsInJwksAsync()).Should().NotContain(old.Kid).And.HaveCount(1);
    }

    [Fact]
    public async Task A_rotation_made_with_the_CLI_is_published_at_the_next_refresh_and_signs_after_the_lead()
    {
        using var browser = broker.NewBrowser();
        var before = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        var rotate = await AdminCli.RunAsync(broker, "keys", "rotate");
        rotate.ExitCode.Should().Be(0, rotate.Error);
        var list = await AdminCli.RunAsync(broker, "keys", "list");
        clock.Advance(SigningKeyRefresher.Interval);
        var published = await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () => (await KeyIdsInJwksAsync()).Count() == 2);
        var meanwhile = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        clock.Advance(SigningKeyStore.PublicationLead);
        JsonWebToken after = null!;
        await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () =>
        {
            after = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
            return after.Kid != before.Kid;
        });

        list.Output.Should().Contain($"{before.Kid}  ES256").And.Contain("active until").And.Contain("published, signs from");
        published.Should().BeTrue("the running broker reloads the keys the CLI wrote");
        meanwhile.Kid.Should().Be(before.Kid);
        after.Kid.Should().NotBe(before.Kid);
        rotate.Output.Should().Contain(after.Kid).And.Contain("signs from");
        (await GetMeAsync(before.EncodedToken)).Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_CLI_rotates_a_compromised_key_with_now()
    {
        var rotate = await AdminCli.RunAsync(broker, "keys", "rotate", "--now");
        var list = await AdminCli.RunAsync(broker, "keys", "list");

        rotate.ExitCode.Should().Be(0, rotate.Error);
        rotate.Output.Should().Contain("signs now; the earlier keys are withdrawn");
        list.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCount(2)
            .And.ContainSingle(line => line.EndsWith("  active", StringComparison.Ordinal))
            .And.ContainSingle(line => line.EndsWith("withdrawn or expired", StringComparison.Ordinal));
    }

    private SigningKeyStore Store => broker.Services.GetRequiredService<SigningKeyStore>();

    private async Task<int> JwksMaxAgeAsync()
    {
        using var client = broker.CreateClient();
        using var response = await client.GetAsync("/.well-known/jwks.json");
        return (int)response.Headers.CacheControl!.MaxAge!.Value.TotalSeconds;
    }

    private async Task<IEnumerable<string>> KeyIdsInJwksAsync()
    {
        using var client = broker.CreateClient();
        return new JsonWebKeySet(await client.GetStringAsync("/.well-known/jwks.json")).Keys.Select(key => key.Kid);
    }

    private async Task<HttpStatusCode> GetMeAsync(string token)
    {
        using var client = broker.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        request.Headers.Authorization = new("Bearer", token);
        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }
}
