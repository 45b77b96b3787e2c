using System.Net;
using Microsoft.Extensions.DependencyInjection;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tokens;

namespace OAuthBroker.Tests.Tokens;

/// <summary>
/// Two brokers on one database (on SQLite: the same file; on PostgreSQL: the same database), as replicas are: a key
/// rotated in on one is honoured on the other at once, when a token signed with it arrives, not after the 30-second
/// refresh; tokens with made-up key ids do not each cost a reload.
/// </summary>
public sealed class ReplicaKeyTests : FakeGitHubTest
{
    [Fact]
    public async Task A_token_signed_by_a_key_another_replica_just_rotated_in_is_accepted_at_once()
    {
        await using var a = new BrokerFactory(GitHub, Folder, Instances.Json);
        await using var b = new BrokerFactory(GitHub, Folder, Instances.Json);
        _ = a.Server;
        _ = b.Server;
        var rotated = await a.Services.GetRequiredService<SigningKeyStore>().RotateAsync(compromised: true, CancellationToken.None);
        using var browser = a.NewBrowser();
        var token = (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token;
        new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(token).Kid.Should().Be(rotated.KeyId);
        // On PostgreSQL the rotation is announced (NOTIFY) and B may hold the key already; on SQLite it has not refreshed.
        var announced = b.UsesPostgres;
        if (!announced)
        {
            b.Services.GetRequiredService<SigningKeyStore>().Keys.Should().NotContain(key => key.KeyId == rotated.KeyId, "B has not refreshed yet");
        }

        using var response = await GetMeAsync(b, token);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        if (!announced)
        {
            b.Logs.Lines.Should().ContainSingle(line => line.EventId == 3004);
        }
    }

    [Fact]
    public async Task Tokens_with_made_up_key_ids_reload_the_keys_at_most_once_per_interval()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using var browser = broker.NewBrowser();
        var token = (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token;
        var parts = token.Split('.');

        for (var i = 0; i < 20; i++)
        {
            var header = System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes($$"""{"alg":"ES256","kid":"made-up-{{i}}","typ":"JWT"}"""));
            using var response = await GetMeAsync(broker, $"{header}.{parts[1]}.{parts[2]}");
            response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        }

        broker.Logs.Lines.Count(line => line.EventId == 3004).Should().Be(1);
    }

    private static async Task<HttpResponseMessage> GetMeAsync(BrokerFactory broker, string bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + bearer);
        return await broker.CreateClient().SendAsync(request);
    }
}
