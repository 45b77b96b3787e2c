using OAuthBroker.Broker;

namespace OAuthBroker.Storage;

/// <summary>
/// The data folder (<c>Broker:DataPath</c>): the database and the Data Protection key ring that decrypts the signing
/// key. Whoever reads both can sign tokens for every instance, so what the broker creates there is its user's alone
/// (folders 0700, the database 0600; the key ring's files are written 0600 by Data Protection itself), and it will not
/// start on a key ring or database that other users can read.
/// </summary>
public static class DataFolder
{
    public const string KeyRingFolderName = "keys";

    private const UnixFileMode OwnerOnlyFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode ReadableByOthers = UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>Creates what is missing, owner-only, and proves the folder writable; refuses what others can read.</summary>
    public static void Prepare(string databasePath)
    {
        var folder = Path.GetDirectoryName(databasePath)!;
        var keyRing = Path.Combine(folder, KeyRingFolderName);
        try
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(keyRing);
            }
            else
            {
                Directory.CreateDirectory(folder, OwnerOnlyFolder);
                Directory.CreateDirectory(keyRing, OwnerOnlyFolder);
                // SQLite gives its -wal and -shm files the database's mode, so an owner-only file keeps them so too.
                using var database = new FileStream(databasePath, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, UnixCreateMode = OwnerOnlyFile });
            }

            // SQLite would otherwise report only "unable to open database file", later, without naming the folder.
            using var probe = new FileStream(Path.Combine(folder, $".write-test-{Environment.ProcessId}"), FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new StartupException(
                $"The data folder {folder} (Broker:DataPath) is not writable: {exception.Message} Point Broker:DataPath (environment variable Broker__DataPath) at a folder this user can write, or give this user write access to it.",
                exception);
        }

        if (!OperatingSystem.IsWindows())
        {
            RefuseIfReadableByOthers(keyRing, databasePath);
        }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void RefuseIfReadableByOthers(string keyRing, string databasePath)
    {
        var exposed = new[] { keyRing, databasePath }.Where(path => (File.GetUnixFileMode(path) & ReadableByOthers) != 0).ToList();
        if (exposed.Count > 0)
        {
            throw new StartupException(
                $"{string.Join(" and ", exposed)} can be read by other users of this machine, and with both the key ring and the database anyone can sign tokens for every instance. "
                + $"Run: chmod 700 '{keyRing}' && chmod 600 '{databasePath}'*  (then rotate the signing key with `keys rotate --now` if others may have read them).");
        }
    }
}
