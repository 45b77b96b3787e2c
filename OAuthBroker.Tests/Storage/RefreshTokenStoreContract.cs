using System.Security.Cryptography;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// What every refresh-token backend must do: record by hash once, let exactly one of any number of racing claims win
/// (through separate connections, as separate replicas), keep the answer, give a released claim back, and purge.
/// </summary>
public abstract class RefreshTokenStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    private static byte[] NewHash() => RandomNumberGenerator.GetBytes(32);

    [Fact]
    public async Task A_token_is_recorded_once_and_found_by_its_hash_only()
    {
        var rows = Backend.RefreshTokens();
        var hash = NewHash();

        await rows.RecordAsync(hash, "trackeep-home", 7, 1_000, 9_000, CancellationToken.None);
        await rows.RecordAsync(hash, "other-instance", 8, 2_000, 9_000, CancellationToken.None);

        var row = await rows.FindAsync(hash, CancellationToken.None);
        row!.InstanceId.Should().Be("trackeep-home", "a hash already recorded keeps its instance");
        row.UserId.Should().Be(7);
        row.ClaimedAt.Should().BeNull();
        (await rows.FindAsync(NewHash(), CancellationToken.None)).Should().BeNull();
    }

    [Fact]
    public async Task Revoking_with_the_access_token_ends_an_unused_token_once_and_says_why()
    {
        var rows = Backend.RefreshTokens();
        var (open, used) = (NewHash(), NewHash());
        await rows.RecordAsync(open, "trackeep-home", 7, 1_000, 90_000, CancellationToken.None);
        await rows.RecordAsync(used, "trackeep-home", 7, 1_000, 90_000, CancellationToken.None);
        await rows.AnswerAsync(used, 2_000, "issued", "{}", CancellationToken.None);

        (await rows.RevokeWithAccessTokenAsync(open, 5_000, CancellationToken.None)).Should().BeTrue();
        (await rows.RevokeWithAccessTokenAsync(open, 6_000, CancellationToken.None)).Should().BeFalse("it is revoked already");
        (await rows.RevokeWithAccessTokenAsync(used, 5_000, CancellationToken.None)).Should().BeFalse("a used token's answer stands");

        var row = await Backend.RefreshTokens().FindAsync(open, CancellationToken.None);
        row!.RevokedAt.Should().Be(5_000);
        row.RevokedBy.Should().Be("access_token");
        (await rows.FindAsync(used, CancellationToken.None))!.RevokedAt.Should().BeNull();
    }

    [Fact]
    public async Task Ending_a_users_access_marks_their_unused_unexpired_tokens_only()
    {
        var rows = Backend.RefreshTokens();
        var (open, used, expired, otherUser) = (NewHash(), NewHash(), NewHash(), NewHash());
        await rows.RecordAsync(open, "trackeep-home", 7, 1_000, 90_000, CancellationToken.None);
        await rows.RecordAsync(used, "trackeep-home", 7, 1_000, 90_000, CancellationToken.None);
        await rows.AnswerAsync(used, 2_000, "issued", "{}", CancellationToken.None);
        await rows.RecordAsync(expired, "trackeep-home", 7, 1_000, 4_000, CancellationToken.None);
        await rows.RecordAsync(otherUser, "trackeep-home", 8, 1_000, 90_000, CancellationToken.None);

        (await rows.RequestGrantRevocationAsync(7, 5_000, CancellationToken.None)).Should().Be(1);

        (await Backend.RefreshTokens().FindAsync(open, CancellationToken.None))!.RevokeGrantAt.Should().Be(5_000, "another replica sees the mark");
        (await rows.FindAsync(used, CancellationToken.None))!.RevokeGrantAt.Should().BeNull();
        (await rows.FindAsync(expired, CancellationToken.None))!.RevokeGrantAt.Should().BeNull();
        (await rows.FindAsync(otherUser, CancellationToken.None))!.RevokeGrantAt.Should().BeNull();
    }

    [Fact]
    public async Task Of_concurrent_claims_through_separate_connections_exactly_one_wins_and_an_answer_ends_all_claims()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => Backend.RefreshTokens()).ToList();
        for (var round = 0; round < 5; round++)
        {
            var hash = NewHash();
            await stores[0].RecordAsync(hash, "trackeep-home", 7, 1_000, 1_000_000, CancellationToken.None);
            using var go = new ManualResetEventSlim();
            var claims = Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
            {
                go.Wait();
                return await stores[i % stores.Count].TryClaimAsync(hash, 2_000, 0, CancellationToken.None);
            })).ToList();
            go.Set();
            (await Task.WhenAll(claims)).Count(won => won).Should().Be(1);

            await stores[1].AnswerAsync(hash, 3_000, "issued", "{\"token\":\"x\"}", CancellationToken.None);
            var answered = await stores[2].FindAsync(hash, CancellationToken.None);
            (answered!.AnsweredAt, answered.Outcome, answered.Answer).Should().Be((3_000L, "issued", "{\"token\":\"x\"}"));
            (await stores[3].TryClaimAsync(hash, 4_000, 3_500, CancellationToken.None)).Should().BeFalse("an answered token is never claimed again");
        }
    }

    [Fact]
    public async Task A_released_or_abandoned_claim_can_be_claimed_again()
    {
        var rows = Backend.RefreshTokens();
        var hash = NewHash();
        await rows.RecordAsync(hash, "trackeep-home", 7, 1_000, 1_000_000, CancellationToken.None);

        (await rows.TryClaimAsync(hash, 2_000, 0, CancellationToken.None)).Should().BeTrue();
        (await rows.TryClaimAsync(hash, 2_500, 1_000, CancellationToken.None)).Should().BeFalse("the claim is fresh");
        await rows.ReleaseAsync(hash, CancellationToken.None);
        (await rows.TryClaimAsync(hash, 3_000, 1_000, CancellationToken.None)).Should().BeTrue("a released claim is free");
        (await rows.TryClaimAsync(hash, 60_000, 10_000, CancellationToken.None)).Should().BeTrue("a claim older than the deadline was abandoned");
    }

    [Fact]
    public async Task Purging_deletes_expired_tokens_and_answers_past_the_window_and_keeps_the_rest()
    {
        var rows = Backend.RefreshTokens();
        var (expired, answeredLongAgo, answeredRecently, live) = (NewHash(), NewHash(), NewHash(), NewHash());
        await rows.RecordAsync(expired, "i", 1, 0, 5_000, CancellationToken.None);
        foreach (var hash in new[] { answeredLongAgo, answeredRecently, live })
        {
            await rows.RecordAsync(hash, "i", 1, 0, 1_000_000, CancellationToken.None);
        }

        await rows.AnswerAsync(answeredLongAgo, 1_000, "issued", "{}", CancellationToken.None);
        await rows.AnswerAsync(answeredRecently, 9_000, "issued", "{}", CancellationToken.None);

        (await rows.DeleteEndedAsync(10_000, 8_000, CancellationToken.None)).Should().Be(2);

        (await rows.FindAsync(expired, CancellationToken.None)).Should().BeNull();
        (await rows.FindAsync(answeredLongAgo, CancellationToken.None)).Should().BeNull();
        (await rows.FindAsync(answeredRecently, CancellationToken.None)).Should().NotBeNull();
        (await rows.FindAsync(live, CancellationToken.None)).Should().NotBeNull();
    }
}

public sealed class SqliteRefreshTokenStoreTests : RefreshTokenStoreContract<SqliteBackend>;

public sealed class PostgresRefreshTokenStoreTests : RefreshTokenStoreContract<PostgresBackend>;
