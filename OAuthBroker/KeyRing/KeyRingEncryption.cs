using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;

namespace OAuthBroker.KeyRing;

/// <summary>
/// The XML that stands for an encrypted key-ring secret, and the way from one to the other. Data Protection replaces
/// every element it marks <c>requiresEncryption</c> with <c>&lt;encryptedSecret decryptorType="…"&gt;</c> around what
/// <see cref="KeyRingEncryptor"/> returns, and hands that back to <see cref="KeyRingDecryptor"/> when it reads the key.
/// </summary>
public static class KeyRingEncryption
{
    /// <summary>Data Protection's own names (Microsoft.AspNetCore.DataProtection XmlConstants), which it reads and writes.</summary>
    public static readonly XNamespace DataProtectionNamespace = "http://schemas.asp.net/2015/03/dataProtection";
    public static readonly XName EncryptedSecret = DataProtectionNamespace + "encryptedSecret";
    public static readonly XName RequiresEncryption = DataProtectionNamespace + "requiresEncryption";
    public const string DecryptorTypeAttribute = "decryptorType";

    public static readonly XNamespace Namespace = "urn:oauthbroker:key-ring";
    public static readonly XName EncryptedKey = Namespace + "encryptedKey";
    public static readonly XName Jwe = Namespace + "jwe";

    /// <summary>The decryptor Data Protection is told to activate, by this name, when it reads the entry.</summary>
    public static string DecryptorTypeName => typeof(KeyRingDecryptor).AssemblyQualifiedName!;

    public static XElement Encrypt(XElement plaintext, KeyEncryptionKey key)
    {
        var bytes = Encoding.UTF8.GetBytes(plaintext.ToString(SaveOptions.DisableFormatting));
        try
        {
            return new XElement(EncryptedKey,
                new XAttribute("kid", key.Id),
                new XComment(" Encrypted with the key-encryption key named by kid (Broker:KeyEncryptionKey), as a compact JWE. "),
                new XElement(Jwe, key.Encrypt(bytes)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>The key the entry names, or null when none of <paramref name="keys"/> is it.</summary>
    public static KeyEncryptionKey? KeyOf(XElement encryptedKey, KeyEncryptionKeys keys) => keys.Find(KeyIdOf(encryptedKey));

    public static string? KeyIdOf(XElement encryptedKey) => KeyEncryptionKey.KeyIdOf(JweOf(encryptedKey));

    /// <exception cref="CryptographicException">The entry was altered, or <paramref name="key"/> is not the one that encrypted it.</exception>
    public static XElement Decrypt(XElement encryptedKey, KeyEncryptionKey key)
    {
        byte[] bytes;
        try
        {
            bytes = key.Decrypt(JweOf(encryptedKey));
        }
        catch (Exception exception) when (exception is not CryptographicException)
        {
            // jose-jwt reports a failed unwrap or tag check as its own exception types.
            throw new CryptographicException($"A key-ring entry does not open with key-encryption key {key.Id}: it was altered or damaged.", exception);
        }

        try
        {
            using var reader = new MemoryStream(bytes, writable: false);
            return XElement.Load(reader);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static string JweOf(XElement encryptedKey) =>
        encryptedKey.Name == EncryptedKey && encryptedKey.Element(Jwe)?.Value is { Length: > 0 } jwe
            ? jwe
            : throw new CryptographicException($"A key-ring entry is not an {EncryptedKey.LocalName} element with a jwe inside.");
}

/// <summary>Given to Data Protection: every new key-ring entry is encrypted with the current key-encryption key.</summary>
public sealed class KeyRingEncryptor(KeyEncryptionKeys keys) : IXmlEncryptor
{
    public EncryptedXmlInfo Encrypt(XElement plaintextElement) =>
        new(KeyRingEncryption.Encrypt(plaintextElement, keys.Current), typeof(KeyRingDecryptor));
}

/// <summary>
/// Activated by Data Protection from the type name each entry carries, through its constructor that takes the service
/// provider; the type is kept for the native executable's trimming by <see cref="DynamicDependencyAttribute"/> below.
/// </summary>
public sealed class KeyRingDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement)
    {
        ArgumentNullException.ThrowIfNull(encryptedElement);
        var keys = services.GetRequiredService<KeyEncryptionKeys>();
        var key = KeyRingEncryption.KeyOf(encryptedElement, keys)
            ?? throw new CryptographicException($"A key-ring entry is encrypted with key-encryption key {KeyRingEncryption.KeyIdOf(encryptedElement) ?? "(unnamed)"}, which is not configured.");
        return KeyRingEncryption.Decrypt(encryptedElement, key);
    }

    [DynamicDependency(DynamicallyAccessedMemberTypes.PublicConstructors, typeof(KeyRingDecryptor))]
    internal static void KeepForActivation()
    {
    }
}
