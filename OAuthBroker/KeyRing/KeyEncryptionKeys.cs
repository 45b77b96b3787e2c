using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

namespace OAuthBroker.KeyRing;

/// <summary>
/// The key the key ring is encrypted with now, and the keys it may still be encrypted with after a rotation. Read once,
/// when first needed; a missing or bad key is a <see cref="StartupException"/> that says how to give one.
/// </summary>
public sealed class KeyEncryptionKeys(IOptions<KeyRingOptions> options, IHostEnvironment environment)
{
    /// <summary>Where Development keeps the key it generates, outside any data folder.</summary>
    public static string GeneratedKeyPath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "OAuthBroker", "key-encryption-key");

    private readonly Lazy<(KeyEncryptionKey Current, IReadOnlyList<KeyEncryptionKey> All)> keys =
        new(() => Read(options.Value, environment), LazyThreadSafetyMode.ExecutionAndPublication);

    public KeyEncryptionKey Current => keys.Value.Current;

    /// <summary>The current key first, then the previous ones.</summary>
    public IReadOnlyList<KeyEncryptionKey> All => keys.Value.All;

    public KeyEncryptionKey? Find(string? id) => id is null ? null : All.FirstOrDefault(key => key.Id == id);

    private static (KeyEncryptionKey, IReadOnlyList<KeyEncryptionKey>) Read(KeyRingOptions options, IHostEnvironment environment)
    {
        var current = ReadCurrent(options, environment);
        var previous = options.PreviousKeyEncryptionKeys.Select((value, index) => KeyEncryptionKey.Parse(value, $"Broker:PreviousKeyEncryptionKeys:{index}"))
            .Concat(options.PreviousKeyEncryptionKeyFiles.Select((path, index) => KeyEncryptionKey.Parse(ReadFile(path, $"Broker:PreviousKeyEncryptionKeyFiles:{index}"), $"the file {path} (Broker:PreviousKeyEncryptionKeyFiles:{index})")));
        var all = new List<KeyEncryptionKey> { current };
        all.AddRange(previous.Where(key => all.TrueForAll(known => known.Id != key.Id)));
        return (current, all);
    }

    private static KeyEncryptionKey ReadCurrent(KeyRingOptions options, IHostEnvironment environment)
    {
        var value = string.IsNullOrWhiteSpace(options.KeyEncryptionKey) ? null : options.KeyEncryptionKey;
        var file = string.IsNullOrWhiteSpace(options.KeyEncryptionKeyFile) ? null : options.KeyEncryptionKeyFile;
        switch (value, file)
        {
            case ({ }, { }):
                throw new StartupException("Broker:KeyEncryptionKey and Broker:KeyEncryptionKeyFile are both set: give the key-encryption key one way, not two.");
            case ({ }, null):
                return KeyEncryptionKey.Parse(value, "Broker:KeyEncryptionKey");
            case (null, { }):
                return KeyEncryptionKey.Parse(ReadFile(file, "Broker:KeyEncryptionKeyFile"), $"the file {file} (Broker:KeyEncryptionKeyFile)");
        }

        if (environment.IsDevelopment())
        {
            return GeneratedKey();
        }

        throw new StartupException(
            "No key-encryption key is set. The Data Protection key ring under Broker:DataPath (which decrypts the signing key) is kept encrypted with a key "
            + "held outside the data folder. Generate one with `openssl rand -base64 32`, keep it in your secret store, and give it to the broker and its "
            + "commands as the environment variable Broker__KeyEncryptionKey (or as a file, Broker__KeyEncryptionKeyFile). An existing key ring is encrypted "
            + "with it at the next start; losing it means a new signing key and new admin sessions.");
    }

    private static string ReadFile(string path, string setting)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"{setting} names {path}, which cannot be read: {exception.Message}", exception);
        }
    }

    /// <summary>
    /// Development only: a key of this user's, generated once, outside the data folder. It keeps a copied data folder
    /// (a backup, a folder shared by mistake) from carrying the signing key; it does not protect from anyone who can
    /// read this user's files, who can read the key too.
    /// </summary>
    private static KeyEncryptionKey GeneratedKey()
    {
        var path = GeneratedKeyPath;
        var description = $"the generated Development key {path}";
        try
        {
            if (!File.Exists(path))
            {
                var folder = Path.GetDirectoryName(path)!;
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(folder);
                }
                else
                {
                    Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }

                WriteNewKey(path);
            }

            return KeyEncryptionKey.Parse(File.ReadAllText(path), description);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new StartupException(
                $"Development generates a key-encryption key in {path}, which failed: {exception.Message} Set Broker__KeyEncryptionKey (`openssl rand -base64 32`) instead.",
                exception);
        }
    }

    /// <summary>Written whole under a temporary name, then renamed: another process of this user never reads half a key.</summary>
    private static void WriteNewKey(string path)
    {
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var writer = new StreamWriter(temporary, options))
        {
            writer.WriteLine(KeyEncryptionKey.NewBase64());
        }

        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another broker process of this user made one first: use theirs.
            File.Delete(temporary);
        }
    }
}
