using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Broker;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tokens;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// What every signing-key backend must do: one first key however many replicas start together, rotations that every
/// replica sees on its next load, planned keys published before they sign, compromised keys withdrawn at once.
/// </summary>
public abstract class SigningKeyStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));

    // One key ring for every "replica", as they share it in production.
    private readonly IDataProtectionProvider dataProtection = new EphemeralDataProtectionProvider();

    private SigningKeyStore NewStore() =>
        new(Backend.SigningKeys(), dataProtection, Options.Create(new BrokerOptions()), clock, NullLogger<SigningKeyStore>.Instance);

    [Fact]
    public async Task Replicas_starting_together_create_one_first_key_and_all_sign_with_it()
    {
        var stores = Enumerable.Range(0, 12).Select(_ => NewStore()).ToList();
        using var go = new ManualResetEventSlim();

        var loads = stores.Select(store => Task.Run(async () =>
        {
            go.Wait();
            await store.LoadAsync(CancellationToken.None);
        })).ToList();
        go.Set();
        await Task.WhenAll(loads);

        (await stores[0].ListAsync(CancellationToken.None)).Should().ContainSingle();
        stores.Select(store => store.Active.KeyId).Distinct().Should().ContainSingle();
    }

    [Fact]
    public async Task A_planned_rotation_is_published_at_once_and_signs_after_the_publication_lead_on_every_replica()
    {
        var a = NewStore();
        var b = NewStore();
        await a.LoadAsync(CancellationToken.None);
        await b.LoadAsync(CancellationToken.None);
        var first = a.Active.KeyId;

        var rotated = await a.RotateAsync(compromised: false, CancellationToken.None);
        await b.LoadAsync(CancellationToken.None);

        b.Keys.Select(key => key.KeyId).Should().BeEquivalentTo([first, rotated.KeyId], "the new key is in the JWKS before it signs");
        b.Active.KeyId.Should().Be(first);
        clock.Advance(SigningKeyStore.PublicationLead);
        await b.LoadAsync(CancellationToken.None);
        b.Active.KeyId.Should().Be(rotated.KeyId);
        b.Keys.Select(key => key.KeyId).Should().Contain(first, "the old key verifies until its tokens expire");
    }

    [Fact]
    public async Task A_compromised_key_is_withdrawn_at_once_and_the_new_key_signs_at_once_on_every_replica()
    {
        var a = NewStore();
        var b = NewStore();
        await a.LoadAsync(CancellationToken.None);
        var first = a.Active.KeyId;

        var rotated = await a.RotateAsync(compromised: true, CancellationToken.None);
        await b.LoadAsync(CancellationToken.None);

        b.Active.KeyId.Should().Be(rotated.KeyId);
        b.Keys.Select(key => key.KeyId).Should().Equal(rotated.KeyId);
        (await b.ListAsync(CancellationToken.None)).Single(key => key.KeyId == first).HonouredUntil.Should().BeBefore(clock.GetUtcNow());
    }
}

public sealed class SqliteSigningKeyStoreTests : SigningKeyStoreContract<SqliteBackend>;

public sealed class PostgresSigningKeyStoreTests : SigningKeyStoreContract<PostgresBackend>;
