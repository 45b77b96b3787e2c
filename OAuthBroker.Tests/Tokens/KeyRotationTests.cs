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
        broker = new BrokerFactory(GitHub, Folder, Instances.Json, clock: clock);
        _ = broker.Server;
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task After_a_rotation_the_new_key_signs_and_tokens_signed_before_still_verify()
    {
        using var browser = broker.NewBrowser();
        var before = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        var rotated = await broker.Services.GetRequiredService<SigningKeyStore>().RotateAsync(default);
        var after = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        rotated.KeyId.Should().NotBe(before.Kid);
        after.Kid.Should().Be(rotated.KeyId);
        (await KeyIdsInJwksAsync()).Should().BeEquivalentTo([before.Kid, after.Kid]);
        (await GetMeAsync(before.EncodedToken)).Should().Be(HttpStatusCode.OK);
        (await GetMeAsync(after.EncodedToken)).Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_retired_key_leaves_the_JWKS_once_every_token_it_signed_has_expired()
    {
        using var browser = broker.NewBrowser();
        var old = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        await broker.Services.GetRequiredService<SigningKeyStore>().RotateAsync(default);

        clock.Advance(TimeSpan.FromMinutes(59));
        await broker.Services.GetRequiredService<SigningKeyStore>().LoadAsync(default);
        (await KeyIdsInJwksAsync()).Should().Contain(old.Kid, "a token it signed may still be valid");

        clock.Advance(TimeSpan.FromMinutes(2));
        await broker.Services.GetRequiredService<SigningKeyStore>().LoadAsync(default);
        (await KeyIdsInJwksAsync()).Should().NotContain(old.Kid).And.HaveCount(1);
    }

    [Fact]
    public async Task A_rotation_made_with_the_CLI_reaches_the_running_broker_at_its_next_refresh()
    {
        using var browser = broker.NewBrowser();
        var before = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        var rotate = await AdminCli.RunAsync(broker, "keys", "rotate");
        rotate.ExitCode.Should().Be(0, rotate.Error);
        var list = await AdminCli.RunAsync(broker, "keys", "list");

        list.Output.Should().Contain($"{before.Kid}  ES256").And.Contain("retired, in the JWKS until").And.Contain("active");
        clock.Advance(SigningKeyRefresher.Interval);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        JsonWebToken after;
        do
        {
            await Task.Delay(20);
            after = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        }
        while (after.Kid == before.Kid && DateTime.UtcNow < deadline);

        after.Kid.Should().NotBe(before.Kid);
        rotate.Output.Should().Contain(after.Kid);
        (await GetMeAsync(before.EncodedToken)).Should().Be(HttpStatusCode.OK);
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
