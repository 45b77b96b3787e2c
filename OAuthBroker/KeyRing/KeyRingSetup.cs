using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using OAuthBroker.Storage;

namespace OAuthBroker.KeyRing;

public static class KeyRingSetup
{
    /// <summary>
    /// Data Protection with its key ring beside the database (so the signing key and its protector move and are backed
    /// up together), encrypted at rest with a key-encryption key kept elsewhere.
    /// </summary>
    public static IServiceCollection AddKeyRing(this IServiceCollection services)
    {
        services.AddOptions<KeyRingOptions>().BindConfiguration(Broker.BrokerOptions.Section);
        services.AddSingleton<KeyEncryptionKeys>();
        services.AddStore<IKeyRingStore, FileKeyRingStore, PostgresKeyRingStore>();
        services.AddSingleton<KeyRingGuard>();
        services.AddSingleton<GuardedKeyRingRepository>();
        services.AddDataProtection().SetApplicationName("OAuthBroker");
        services.AddOptions<KeyManagementOptions>().Configure<IServiceProvider>((keyManagement, provider) =>
        {
            keyManagement.XmlRepository = provider.GetRequiredService<GuardedKeyRingRepository>();
            keyManagement.XmlEncryptor = new KeyRingEncryptor(provider.GetRequiredService<KeyEncryptionKeys>());
        });
        KeyRingDecryptor.KeepForActivation();
        return services;
    }
}
