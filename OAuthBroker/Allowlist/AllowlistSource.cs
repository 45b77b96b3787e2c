using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Npgsql;
using OAuthBroker.Broker;
using OAuthBroker.Storage;

namespace OAuthBroker.Allowlist;

/// <summary>The allowlist document as stored, and the hex SHA-256 of its bytes (its ETag and change marker).</summary>
public sealed record StoredAllowlist(byte[] Bytes, string Sha256)
{
    public static StoredAllowlist Of(byte[] bytes) => new(bytes, AllowlistFile.Sha256(bytes));
}

/// <summary>
/// Where the allowlist is the source of truth: the file <c>Broker:AllowlistPath</c> with SQLite (one machine, edited by
/// hand or by the broker), or a row every replica shares with PostgreSQL (seeded once from that file). Either way the
/// document is one JSON object, read and written whole, so one validation covers every writer.
/// </summary>
public interface IAllowlistSource
{
    /// <summary>Names where the allowlist lives, for messages: "Allowlist file '/app/allowed-redirects.json'".</summary>
    string Location { get; }

    /// <summary>The document, or null when its hash is still <paramref name="unlessSha256"/>; throws <see cref="AllowlistException"/> when it cannot be read.</summary>
    Task<StoredAllowlist?> ReadAsync(string? unlessSha256, CancellationToken cancellationToken);

    /// <summary>Excludes every other writer (process or replica) until disposed, and reads the document under that exclusion.</summary>
    Task<IAllowlistWriter> LockAsync(CancellationToken cancellationToken);
}

/// <summary>An exclusive hold on the allowlist: what it holds now, and the one write the holder may make.</summary>
public interface IAllowlistWriter : IAsyncDisposable
{
    /// <summary>The document held now; throws <see cref="AllowlistException"/> when it cannot be read (an import replaces it unread).</summary>
    StoredAllowlist Current { get; }

    /// <summary>The hash of the document held now, known without reading it.</summary>
    string CurrentSha256 { get; }

    /// <summary>Replaces the document whole; a reader sees the old one or the new one. The caller has validated it.</summary>
    Task WriteAsync(byte[] bytes, CancellationToken cancellationToken);
}

/// <summary>How long a writer waits for the allowlist while another holds it, on either backend, and what it is told after.</summary>
public static class AllowlistLock
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>How often a writer tries the file's lock again (PostgreSQL's row lock wakes its waiter itself).</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    public static AllowlistException Busy(string location, Exception cause) => new(
        $"{location} stayed locked by another writer (the allowlist command, or another admin's edit) for {Timeout.TotalSeconds:0} s; nothing was written: try again once it has finished.", cause)
    {
        Retryable = true,
    };
}

/// <summary>The allowlist file: read bounded, written atomically (temporary file, flush, rename) under a lock file.</summary>
public sealed class FileAllowlistSource(IOptions<BrokerOptions> options, TimeProvider time) : IAllowlistSource
{
    private string FilePath => Path.GetFullPath(options.Value.AllowlistPath);

    public string Location => $"Allowlist file '{FilePath}'";

    public Task<StoredAllowlist?> ReadAsync(string? unlessSha256, CancellationToken cancellationToken)
    {
        var stored = StoredAllowlist.Of(AllowlistFile.Read(FilePath));
        return Task.FromResult(stored.Sha256 == unlessSha256 ? null : stored);
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000", Justification = "The writer owns the lock file from here and releases it when disposed; a failed read releases it at once.")]
    public async Task<IAllowlistWriter> LockAsync(CancellationToken cancellationToken)
    {
        var exclusive = await AcquireLockAsync(cancellationToken);
        StoredAllowlist current;
        try
        {
            current = StoredAllowlist.Of(AllowlistFile.Read(FilePath));
        }
        catch
        {
            await exclusive.DisposeAsync();
            throw;
        }

        return new Writer(FilePath, exclusive, current);
    }

    /// <summary>
    /// Waits for the lock file without holding a thread (an admin request must not block one while the CLI edits), and
    /// gives up when the caller does (a request whose client went away writes nothing) or after <see cref="AllowlistLock.Timeout"/>.
    /// </summary>
    private async Task<FileStream> AcquireLockAsync(CancellationToken cancellationToken)
    {
        var lockPath = FilePath + ".lock";
        var deadline = time.GetUtcNow() + AllowlistLock.Timeout;
        while (true)
        {
            // A caller that gave up before the lock came free takes it no more than one that gives up while waiting.
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                // FileShare.None is an flock(2) on Unix, so it also excludes other processes (the CLI beside the service).
                // The lock file is left in place: deleting it would let two waiters lock two different files.
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException exception)
            {
                if (time.GetUtcNow() >= deadline)
                {
                    // Only a lock held all along is "busy, try again"; any other failure (a full disk, a bad path) is itself.
                    if (IsHeldByAnother(exception))
                    {
                        throw AllowlistLock.Busy(Location, exception);
                    }

                    throw;
                }

                await Task.Delay(AllowlistLock.Poll, time, cancellationToken);
            }
        }
    }

    /// <summary>Whether opening the lock file failed because another writer holds it: flock's EWOULDBLOCK, or Windows' sharing violation.</summary>
    private static bool IsHeldByAnother(IOException exception) =>
        exception.HResult == (OperatingSystem.IsWindows() ? unchecked((int)0x80070020) : OperatingSystem.IsLinux() ? 11 : 35);

    private sealed class Writer(string path, FileStream exclusive, StoredAllowlist current) : IAllowlistWriter
    {
        public StoredAllowlist Current => current;

        public string CurrentSha256 => current.Sha256;

        public Task WriteAsync(byte[] bytes, CancellationToken cancellationToken)
        {
            WriteAtomically(path, bytes);
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync() => exclusive.DisposeAsync();
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> in one step, keeping the mode the operator gave the file.</summary>
    public static void WriteAtomically(string path, byte[] bytes, UnixFileMode? newFileMode = null)
    {
        var temporary = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            UnixFileMode? mode = OperatingSystem.IsWindows() ? null : File.Exists(path) ? File.GetUnixFileMode(path) : newFileMode;
            if (mode is { } original && !OperatingSystem.IsWindows())
            {
                // The file may hold shared secrets: the copy is never more readable than the original, not even briefly.
                fileOptions.UnixCreateMode = original;
            }

            using (var stream = new FileStream(temporary, fileOptions))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            if (mode is { } exact && !OperatingSystem.IsWindows())
            {
                // The process umask may have taken bits off at creation; the operator's mode is kept as it was.
                File.SetUnixFileMode(temporary, exact);
            }

            // rename(2) replaces the file in one step: a reader sees the old content or the new, never a mix.
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}

/// <summary>
/// The allowlist in PostgreSQL: one row every replica reads, its document encrypted with the Data Protection key ring
/// (instance entries may hold shared secrets, and the ring is itself encrypted with the key-encryption key), its hash
/// in clear so that a replica's poll costs one short read. When the table is empty, the first replica to start seeds
/// it from <c>Broker:AllowlistPath</c>, validated as any write is. Every write announces itself with NOTIFY.
/// </summary>
public sealed class PostgresAllowlistSource(
    PostgresDatabase database, IDataProtectionProvider dataProtection, IOptions<BrokerOptions> options, AllowlistDefaults defaults, TimeProvider time) : IAllowlistSource
{
    private static readonly string LockTimeoutSql = $"SET LOCAL lock_timeout = {(int)AllowlistLock.Timeout.TotalMilliseconds}";

    private readonly IDataProtector protector = dataProtection.CreateProtector("OAuthBroker.Allowlist.Document.v1");

    public string Location => "The allowlist in PostgreSQL (table allowlist)";

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    public async Task<StoredAllowlist?> ReadAsync(string? unlessSha256, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await ReadRowAsync(connection, null, unlessSha256, lockRow: false, cancellationToken);
        if (row is null)
        {
            await SeedAsync(connection, cancellationToken);
            row = await ReadRowAsync(connection, null, unlessSha256, lockRow: false, cancellationToken);
        }

        return row is { Document: { } document } ? Open(row.Value.Sha256, document) : null;
    }

    public async Task<IAllowlistWriter> LockAsync(CancellationToken cancellationToken)
    {
        var connection = await database.OpenAsync(cancellationToken);
        NpgsqlTransaction? transaction = null;
        try
        {
            if (await ReadRowAsync(connection, null, null, lockRow: false, cancellationToken) is null)
            {
                await SeedAsync(connection, cancellationToken);
            }

            transaction = await connection.BeginTransactionAsync(cancellationToken);
            // As long as the file's lock is waited for, and no longer: then the same retryable refusal.
            await PostgresDatabase.ExecuteOnAsync(connection, transaction, LockTimeoutSql, cancellationToken);
            (string Sha256, byte[]? Document)? found;
            try
            {
                found = await ReadRowAsync(connection, transaction, null, lockRow: true, cancellationToken);
            }
            catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.LockNotAvailable)
            {
                throw AllowlistLock.Busy(Location, exception);
            }

            var row = found ?? throw new AllowlistException($"{Location} has no row, although it was just seeded.");
            return new Writer(this, connection, transaction, row.Sha256, row.Document!);
        }
        catch
        {
            if (transaction is not null)
            {
                await transaction.DisposeAsync();
            }

            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>The row's hash and encrypted document, or null when there is none; the document is left unread (null) when its hash is <paramref name="unlessSha256"/>.</summary>
    private static async Task<(string Sha256, byte[]? Document)?> ReadRowAsync(
        NpgsqlConnection connection, NpgsqlTransaction? transaction, string? unlessSha256, bool lockRow, CancellationToken cancellationToken)
    {
        // The document is fetched only when it changed: a poll of an unchanged allowlist reads the hash alone.
        var sql = lockRow
            ? "SELECT sha256, document FROM allowlist WHERE id = 1 FOR UPDATE"
            : "SELECT sha256, CASE WHEN sha256 = $1 THEN NULL ELSE document END FROM allowlist WHERE id = 1";
        await using var command = PostgresDatabase.Command(connection, sql, lockRow ? [] : [unlessSha256 ?? ""], transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var sha256 = reader.GetString(0);
        return (sha256, await reader.IsDBNullAsync(1, cancellationToken) ? null : await reader.GetFieldValueAsync<byte[]>(1, cancellationToken));
    }

    /// <summary>Decrypts a stored document and checks it against its recorded hash.</summary>
    private StoredAllowlist Open(string sha256, byte[] document)
    {
        byte[] bytes;
        try
        {
            bytes = protector.Unprotect(document);
        }
        catch (CryptographicException exception)
        {
            throw new AllowlistException(
                $"{Location} cannot be decrypted: the Data Protection key ring (table data_protection_keys) is not the one it was protected with. Every replica needs the database's key ring and key-encryption key; after a lost key ring, restore the database from a backup, or replace the allowlist with allowlist import FILE.",
                exception);
        }

        var stored = StoredAllowlist.Of(bytes);
        if (!CryptographicOperations.FixedTimeEquals(Convert.FromHexString(stored.Sha256), Convert.FromHexString(sha256)))
        {
            throw new AllowlistException($"{Location} does not match its recorded hash; restore the database from a backup or import the allowlist again (allowlist import FILE).");
        }

        return stored;
    }

    /// <summary>Writes the seed file's content if the table is still empty; a replica that loses the race keeps the winner's.</summary>
    private async Task SeedAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var path = Path.GetFullPath(options.Value.AllowlistPath);
        byte[] bytes;
        try
        {
            bytes = AllowlistFile.Read(path);
        }
        catch (AllowlistException exception)
        {
            throw new AllowlistException($"{Location} is empty, and it is seeded from Broker:AllowlistPath on the first start: {exception.Message}", exception);
        }

        if (AllowlistFile.Validate(bytes, defaults.Scopes) is { Count: > 0 } errors)
        {
            throw new AllowlistException($"Allowlist file '{path}' is invalid, so it cannot seed the allowlist in PostgreSQL:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors));
        }

        var seed = StoredAllowlist.Of(bytes);
        await PostgresDatabase.ExecuteOnAsync(
            connection, null, "INSERT INTO allowlist (id, sha256, document, updated_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING", cancellationToken,
            seed.Sha256, protector.Protect(bytes), Now);
    }

    private sealed class Writer(PostgresAllowlistSource source, NpgsqlConnection connection, NpgsqlTransaction transaction, string sha256, byte[] document) : IAllowlistWriter
    {
        private StoredAllowlist? current;

        public StoredAllowlist Current => current ??= source.Open(sha256, document);

        public string CurrentSha256 => sha256;

        public async Task WriteAsync(byte[] bytes, CancellationToken cancellationToken)
        {
            var written = StoredAllowlist.Of(bytes);
            await PostgresDatabase.ExecuteOnAsync(
                connection, transaction, "UPDATE allowlist SET sha256 = $1, document = $2, updated_at = $3 WHERE id = 1", cancellationToken,
                written.Sha256, source.protector.Protect(bytes), source.Now);
            // Delivered to every replica's listener when the transaction commits, and never if it does not.
            await PostgresDatabase.ExecuteOnAsync(connection, transaction, $"NOTIFY {DatabaseChanges.Allowlist}", cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}
