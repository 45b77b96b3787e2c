using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OAuthBroker.KeyRing;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>
/// What every key-ring backend must do, through Data Protection itself: what one replica protects, another opens; entries
/// are stored encrypted with the key-encryption key; a previous key's entries are re-encrypted at the next start.
/// </summary>
public abstract class KeyRingStoreContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{
    private readonly string currentKey = KeyEncryptionKey.NewBase64();
    private readonly List<ServiceProvider> replicas = [];

    public override async Task DisposeAsync()
    {
        foreach (var replica in replicas)
        {
            await replica.DisposeAsync();
        }

        await base.DisposeAsync();
    }

    /// <summary>A replica's Data Protection, composed as the broker composes it, on the test's key ring store.</summary>
    private ServiceProvider Replica(string key, params string[] previousKeys)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        services.AddSingleton<IHostEnvironment>(new HostEnvironmentStub());
        services.AddKeyRing();
        services.AddSingleton(Backend.KeyRing());
        services.Configure<KeyRingOptions>(options =>
        {
            options.KeyEncryptionKey = key;
            options.PreviousKeyEncryptionKeys = previousKeys;
        });
        var provider = services.BuildServiceProvider();
        replicas.Add(provider);
        return provider;
    }

    [Fact]
    public void What_one_replica_protects_another_opens_and_the_store_holds_it_encrypted()
    {
        var a = Replica(currentKey);
        var b = Replica(currentKey);

        var secret = a.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Protect("an admin session");

        b.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Unprotect(secret).Should().Be("an admin session");
        var entry = Backend.KeyRing().ReadAll().Should().ContainSingle().Subject;
        entry.Name.Should().StartWith("key-");
        entry.Element.Descendants().Should().NotContain(element => element.Name.LocalName == "masterKey");
        entry.Element.Descendants(KeyRingEncryption.EncryptedSecret).Should().ContainSingle();
    }

    [Fact]
    public void A_rotation_of_the_key_encryption_key_re_encrypts_every_entry_at_the_next_start()
    {
        var before = Replica(currentKey);
        var secret = before.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Protect("kept");
        var newKey = KeyEncryptionKey.NewBase64();

        var after = Replica(newKey, currentKey);
        after.GetRequiredService<KeyRingGuard>().EnsureReady();

        var kid = Backend.KeyRing().ReadAll().Single().Element.Descendants(KeyRingEncryption.EncryptedKey).Single().Attribute("kid")!.Value;
        kid.Should().Be(KeyEncryptionKey.Parse(newKey, "test").Id);
        Replica(newKey).GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Unprotect(secret).Should().Be("kept");
    }

    private sealed class HostEnvironmentStub : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Testing";

        public string ApplicationName { get; set; } = "OAuthBroker";

        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;

        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = null!;
    }
}

public sealed class FileKeyRingStoreTests : KeyRingStoreContract<SqliteBackend>;

public sealed class PostgresKeyRingStoreTests : KeyRingStoreContract<PostgresBackend>;
