using System.Security.Cryptography;
using OAuthBroker.Oidc;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// What every authorization-code backend must do: of any number of racing redemptions through separate connections
/// (as separate replicas) exactly one wins; every later presentation marks the code replayed; an expired code is
/// never redeemed; ended codes are purged, replayed ones only at their own, later deadline.
/// </summary>
public abstract class AuthorizationCodeStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    [Fact]
    public async Task Of_racing_redemptions_exactly_one_wins_and_the_others_mark_the_code_replayed()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => Backend.AuthorizationCodes()).ToList();
        for (var round = 0; round < 5; round++)
        {
            var hash = RandomNumberGenerator.GetBytes(32);
            await stores[0].InsertAsync(new AuthorizationCodeRow(hash, "trackeep-home", 7, "{}", 1_000, 61_000, null, null), CancellationToken.None);
            (await stores[1].IsReplayedAsync(hash, CancellationToken.None)).Should().BeFalse();

            var attempts = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => stores[i % stores.Count].RedeemAsync(hash, i % 5 == 0 ? "legacy-rsa" : "trackeep-home", 2_000, CancellationToken.None))));

            attempts.Count(attempt => attempt.Redeemed).Should().Be(1);
            attempts.Where((_, i) => i % 5 == 0).Should().OnlyContain(attempt => attempt.Row == null, "another client's code is neither redeemed nor marked by it");
            attempts.Single(attempt => attempt.Redeemed).Row!.InstanceId.Should().Be("trackeep-home");
            var again = await stores[2].RedeemAsync(hash, "trackeep-home", 3_000, CancellationToken.None);
            again.Redeemed.Should().BeFalse();
            again.Row!.ReplayedAt.Should().NotBeNull();
            (await stores[3].IsReplayedAsync(hash, CancellationToken.None)).Should().BeTrue();
        }
    }

    [Fact]
    public async Task An_expired_or_unknown_code_is_not_redeemed_and_ended_codes_are_purged()
    {
        var store = Backend.AuthorizationCodes();
        var hash = RandomNumberGenerator.GetBytes(32);
        await store.InsertAsync(new AuthorizationCodeRow(hash, "trackeep-home", 7, "{}", 1_000, 61_000, null, null), CancellationToken.None);

        (await store.RedeemAsync(hash, "trackeep-home", 61_000, CancellationToken.None)).Should().Be(default(CodeRedemption), "a code is good for 60 seconds, not at its expiry");
        (await store.RedeemAsync(RandomNumberGenerator.GetBytes(32), "trackeep-home", 2_000, CancellationToken.None)).Row.Should().BeNull();
        (await store.IsReplayedAsync(hash, CancellationToken.None)).Should().BeFalse("an expired code was never redeemed, so nothing was issued");
        (await store.DeleteEndedAsync(61_001, 0, CancellationToken.None)).Should().Be(1);
    }

    [Fact]
    public async Task A_replayed_code_loses_its_grant_and_outlives_the_purge_of_ended_codes_until_its_own_deadline()
    {
        var store = Backend.AuthorizationCodes();
        var replayed = RandomNumberGenerator.GetBytes(32);
        var redeemed = RandomNumberGenerator.GetBytes(32);
        await store.InsertAsync(new AuthorizationCodeRow(replayed, "trackeep-home", 7, "{\"tokens\":1}", 1_000, 61_000, null, null), CancellationToken.None);
        await store.InsertAsync(new AuthorizationCodeRow(redeemed, "trackeep-home", 7, "{\"tokens\":2}", 1_000, 61_000, null, null), CancellationToken.None);
        (await store.RedeemAsync(replayed, "trackeep-home", 2_000, CancellationToken.None)).Redeemed.Should().BeTrue();
        (await store.RedeemAsync(redeemed, "trackeep-home", 2_000, CancellationToken.None)).Redeemed.Should().BeTrue();

        (await store.RedeemAsync(replayed, "trackeep-home", 3_000, CancellationToken.None)).Row!.GrantJson.Should().Be("{}", "what a replayed code would have issued is revoked, so its grant is not kept");

        (await store.DeleteEndedAsync(100_000, 2_999, CancellationToken.None)).Should().Be(1, "only the code that was not replayed goes");
        (await store.IsReplayedAsync(replayed, CancellationToken.None)).Should().BeTrue();
        (await store.DeleteEndedAsync(100_000, 3_001, CancellationToken.None)).Should().Be(1);
        (await store.IsReplayedAsync(replayed, CancellationToken.None)).Should().BeFalse();
    }
}

public sealed class SqliteAuthorizationCodeStoreTests : AuthorizationCodeStoreContract<SqliteBackend>;

public sealed class PostgresAuthorizationCodeStoreTests : AuthorizationCodeStoreContract<PostgresBackend>;
