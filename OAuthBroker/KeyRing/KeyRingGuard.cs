using System.Security.Cryptography;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;
using OAuthBroker.Broker;

namespace OAuthBroker.KeyRing;

/// <summary>
/// Checks the key ring against the key-encryption keys before Data Protection reads it, and brings every entry under
/// the current key. Left to itself, Data Protection would skip an entry it cannot decrypt and make a new key, leaving
/// the signing key undecryptable with a confusing message; here a missing or wrong key stops start-up and names the
/// key it needs. An entry stored in plain XML (a ring from before this broker encrypted it) or under a previous key is
/// re-encrypted with the current key, entry by entry, each replaced whole.
/// </summary>
public sealed partial class KeyRingGuard(KeyEncryptionKeys keys, IKeyRingStore store, ILogger<KeyRingGuard> logger)
{
    private readonly Lock gate = new();
    private bool ready;

    /// <summary>Runs once per process; later calls return at once.</summary>
    public void EnsureReady()
    {
        lock (gate)
        {
            if (ready)
            {
                return;
            }

            var current = keys.Current;
            var (entries, reencrypted) = BringUnderCurrentKey();
            Log.Ready(logger, current.Id, current.Description, reencrypted, entries);
            ready = true;
        }
    }

    private (int Entries, int Reencrypted) BringUnderCurrentKey()
    {
        int entries = 0, reencrypted = 0;
        foreach (var (name, entry) in store.ReadAll())
        {
            var (plain, previous) = (0, 0);
            foreach (var secret in entry.Descendants().Where(IsPlainSecret).ToList())
            {
                secret.ReplaceWith(Wrap(secret));
                plain++;
            }

            foreach (var secret in entry.Descendants(KeyRingEncryption.EncryptedSecret).ToList())
            {
                if (Reencrypt(name, secret) is { } rewrapped)
                {
                    secret.ReplaceWith(rewrapped);
                    previous++;
                }
            }

            entries++;
            if (plain + previous > 0)
            {
                store.Replace(new KeyRingEntry(name, entry));
                reencrypted++;
                if (plain > 0)
                {
                    Log.EncryptedPlainEntry(logger, name, keys.Current.Id);
                }
                else
                {
                    Log.Reencrypted(logger, name, keys.Current.Id);
                }
            }
        }

        return (entries, reencrypted);
    }

    private static bool IsPlainSecret(XElement element) =>
        element.Attribute(KeyRingEncryption.RequiresEncryption) is { } marked && bool.TryParse(marked.Value, out var requires) && requires;

    private XElement Wrap(XElement plaintext) =>
        new(KeyRingEncryption.EncryptedSecret,
            new XAttribute(KeyRingEncryption.DecryptorTypeAttribute, KeyRingEncryption.DecryptorTypeName),
            KeyRingEncryption.Encrypt(plaintext, keys.Current));

    /// <summary>Null when the secret is already under the current key (after proving that it opens).</summary>
    private XElement? Reencrypt(string name, XElement secret)
    {
        var decryptor = secret.Attribute(KeyRingEncryption.DecryptorTypeAttribute)?.Value ?? "";
        var encryptedKey = secret.Elements().SingleOrDefault();
        if (!decryptor.StartsWith(typeof(KeyRingDecryptor).FullName + ",", StringComparison.Ordinal) || encryptedKey is null)
        {
            throw new StartupException(
                $"The key-ring entry {name} in {store.Location} is encrypted by {decryptor.Split(',')[0]}, not by this broker's key-encryption key. Move it out of the key ring if it belongs to another application.");
        }

        var keyId = KeyRingEncryption.KeyIdOf(encryptedKey);
        var key = keys.Find(keyId) ?? throw new StartupException(
            $"The key ring in {store.Location} is encrypted with key-encryption key {keyId ?? "(unnamed)"} (entry {name}), and the configured key is {keys.Current.Id} ({keys.Current.Description})"
            + (keys.All.Count > 1 ? $", with previous keys {string.Join(", ", keys.All.Skip(1).Select(previous => previous.Id))}" : "")
            + ". Give the key it was encrypted with as Broker__KeyEncryptionKey, or, while rotating to a new key, as Broker__PreviousKeyEncryptionKeys__0.");

        XElement plaintext;
        try
        {
            plaintext = KeyRingEncryption.Decrypt(encryptedKey, key);
        }
        catch (CryptographicException exception)
        {
            throw new StartupException($"The key-ring entry {name} in {store.Location} names key-encryption key {key.Id} but does not open with it: the entry was altered or damaged.", exception);
        }

        if (key == keys.Current)
        {
            return null;
        }

        var wrapped = Wrap(plaintext);
        plaintext.RemoveAll();
        return wrapped;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 8001, Level = LogLevel.Information, Message = "Key ring encrypted with key-encryption key {KeyId} from {Source}: {Reencrypted} of {Entries} entries re-encrypted at start")]
        public static partial void Ready(ILogger logger, string keyId, string source, int reencrypted, int entries);

        [LoggerMessage(EventId = 8002, Level = LogLevel.Warning, Message = "Key-ring entry {Name} was stored unencrypted; it is now encrypted with key-encryption key {KeyId}. Copies of the data folder made before now still hold it in plain XML")]
        public static partial void EncryptedPlainEntry(ILogger logger, string name, string keyId);

        [LoggerMessage(EventId = 8003, Level = LogLevel.Information, Message = "Key-ring entry {Name} re-encrypted from a previous key-encryption key to {KeyId}")]
        public static partial void Reencrypted(ILogger logger, string name, string keyId);
    }
}

/// <summary>
/// The repository Data Protection reads and writes, behind the guard: nothing is read from the key ring before the guard
/// has checked it (whichever part of the broker or its commands asks first).
/// </summary>
public sealed class GuardedKeyRingRepository(KeyRingGuard guard, IKeyRingStore store) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        guard.EnsureReady();
        return [.. store.ReadAll().Select(entry => entry.Element)];
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        guard.EnsureReady();
        store.Add(new KeyRingEntry(friendlyName, element));
    }
}
