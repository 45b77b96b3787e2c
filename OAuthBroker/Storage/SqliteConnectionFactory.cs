using System.Data;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

namespace OAuthBroker.Storage;

/// <summary>
/// The one place that knows where the database lives and how to open it. The process keeps one connection and lends
/// it out in turn. SQLite lets one writer in at a time anyway, and with a pool each connection found its page cache
/// stale at every transaction (another connection had written since), so every login re-read its pages from disk:
/// 15 <c>pread</c> calls per login with a pool, 2 with one connection, measured with <c>perf stat</c>. The
/// connection also keeps the statements of the login path compiled (<see cref="SqliteLease.Prepared"/>): parsing and
/// planning them anew at every call was half of SQLite's own CPU time per login. The login path's writes share
/// commits (<see cref="OpenBatchedAsync"/>): 12 <c>pwrite</c> and 12 <c>fcntl</c> per login instead of 18 and 26.
/// </summary>
public sealed class SqliteConnectionFactory : IAsyncDisposable, IDisposable
{
    /// <summary>Rows one purge statement deletes before the connection is handed to whoever is waiting.</summary>
    public const int PurgeBatch = 5_000;

    /// <summary>Batched leases that share one commit at most, so a steady queue still commits regularly.</summary>
    public const int MaxBatchMembers = 32;

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2213", Justification = "Its wait handle is never created, and disposing it would fail callers still waiting at shutdown with the wrong exception.")]
    private readonly SemaphoreSlim turn = new(1, 1);
    private readonly string connectionString;
    private readonly string readerConnectionString;
    private SqliteConnection? shared;
    private PreparedStatements? statements;
    private WriteBatch? batch;
    private int waiting;
    private bool disposed;

    public SqliteConnectionFactory(IOptions<BrokerOptions> options)
    {
        var path = options.Value.DatabasePath;
        DataFolder.Prepare(path);
        connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            // The factory keeps its own connection open; closing it must really close the file.
            Pooling = false,
            // Microsoft.Data.Sqlite retries SQLITE_BUSY until this many seconds have passed.
            DefaultTimeout = 10,
        }.ToString();
        readerConnectionString = new SqliteConnectionStringBuilder(connectionString) { Mode = SqliteOpenMode.ReadOnly, Pooling = true }.ToString();
    }

    /// <summary>Waits for the connection and lends it until the lease is disposed. Never hold two leases at once.</summary>
    public Task<SqliteLease> OpenAsync(CancellationToken cancellationToken = default) => LendAsync(batched: false, cancellationToken);

    /// <summary>
    /// Like <see cref="OpenAsync"/>, for one write statement on the login path: it runs inside a transaction shared
    /// with the callers queued behind this one, and disposing the lease returns once that transaction has committed
    /// (or throws if it did not). Under load, logins then share one commit (its WAL pages, locks and system calls)
    /// instead of paying one each. Not for callers that open a transaction of their own.
    /// </summary>
    public Task<SqliteLease> OpenBatchedAsync(CancellationToken cancellationToken = default) => LendAsync(batched: true, cancellationToken);

    private async Task<SqliteLease> LendAsync(bool batched, CancellationToken cancellationToken)
    {
        await WaitForTurnAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (!batched)
            {
                // A failed commit drops the connection, so this comes before connecting.
                await CommitBatchAsync();
            }

            if (shared is null)
            {
                shared = await ConnectAsync(cancellationToken);
                statements = new PreparedStatements(shared);
            }

            if (!batched)
            {
                return new SqliteLease(shared, connection => ReturnAsync(connection, joined: null), statements);
            }

            if (batch is null)
            {
                await statements!.For("BEGIN IMMEDIATE").ExecuteNonQueryAsync(cancellationToken);
                batch = new WriteBatch();
            }

            var joined = batch;
            joined.Members++;
            return new SqliteLease(shared, connection => ReturnAsync(connection, joined), statements);
        }
        catch
        {
            await ReleaseTurnAsync();
            throw;
        }
    }

    private async Task WaitForTurnAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref waiting);
        try
        {
            await turn.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The holder may have left its batch uncommitted for this waiter to go on with: someone must still come.
            _ = SettleAfterCancelledWaitAsync();
            throw;
        }
        finally
        {
            Interlocked.Decrement(ref waiting);
        }
    }

    private async Task SettleAfterCancelledWaitAsync()
    {
        await WaitForTurnAsync(CancellationToken.None);
        await ReleaseTurnAsync();
    }

    /// <summary>
    /// A read-only connection of its own, for reads that may take long (admin queries over the audit trail, readiness):
    /// in WAL mode they run beside the writers instead of holding up logins.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000", Justification = "The lease owns the connection and disposes it when returned.")]
    public async Task<SqliteLease> OpenReaderAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var connection = new SqliteConnection(readerConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return new SqliteLease(connection, reader => reader.DisposeAsync());
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Deletes the rows of <paramref name="table"/> (which has an <c>id</c> key) matching <paramref name="condition"/>,
    /// <see cref="PurgeBatch"/> at a time, giving the connection back between batches: a purge of a large backlog
    /// does not stop logins for its whole length. Table and condition are the caller's constants, never input.
    /// </summary>
    public async Task<int> DeleteInBatchesAsync(string table, string condition, IReadOnlyDictionary<string, object> parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var sql = $"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {condition} LIMIT {PurgeBatch})";
        var total = 0;
        int deleted;
        do
        {
            await using var lease = await OpenAsync(cancellationToken);
            var command = lease.Prepared(sql);
            foreach (var (name, value) in parameters)
            {
                command.With(name, value);
            }

            deleted = await command.ExecuteNonQueryAsync(cancellationToken);
            total += deleted;
        }
        while (deleted == PurgeBatch);

        return total;
    }

    private async ValueTask ReturnAsync(SqliteConnection connection, WriteBatch? joined)
    {
        try
        {
            // A plain caller that failed half-way must not hand its open transaction to the next one, and a batched
            // one whose statement made SQLite roll the whole batch back must not let it go on in autocommit: closing
            // rolls back, the batch's members are told, and the next lease opens a fresh connection.
            var inTransaction = connection.State == ConnectionState.Open && SQLitePCL.raw.sqlite3_get_autocommit(connection.Handle) == 0;
            if (connection.State != ConnectionState.Open || inTransaction != (joined is not null))
            {
                await DropSharedAsync();
            }
        }
        finally
        {
            await ReleaseTurnAsync();
        }

        if (joined is not null)
        {
            await joined.Committed.Task;
        }
    }

    /// <summary>Gives the turn to the next caller; an open batch is committed first unless a caller is waiting to join it.</summary>
    private async ValueTask ReleaseTurnAsync()
    {
        try
        {
            if (batch is { } open && (Volatile.Read(ref waiting) == 0 || open.Members >= MaxBatchMembers))
            {
                await CommitBatchAsync();
            }
        }
        finally
        {
            turn.Release();
        }
    }

    private async ValueTask CommitBatchAsync()
    {
        if (batch is not { } open)
        {
            return;
        }

        batch = null;
        var settled = false;
        try
        {
            await statements!.For("COMMIT").ExecuteNonQueryAsync();
            settled = open.Committed.TrySetResult();
        }
        catch (SqliteException exception)
        {
            settled = open.Committed.TrySetException(exception);
            await DropSharedAsync();
        }
        finally
        {
            // Whatever else went wrong, the members waiting on this batch must not wait forever.
            if (!settled)
            {
                open.Committed.TrySetException(new InvalidOperationException("The batched write did not commit; it was rolled back."));
                await DropSharedAsync();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await turn.WaitAsync();
        try
        {
            await CommitBatchAsync();
            disposed = true;
            await DropSharedAsync();
        }
        finally
        {
            turn.Release();
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async ValueTask DropSharedAsync()
    {
        batch?.Committed.TrySetException(new InvalidOperationException("The database connection was closed before the batched write committed; it was rolled back."));
        batch = null;
        statements?.Dispose();
        statements = null;
        if (shared is not null)
        {
            await shared.DisposeAsync();
            shared = null;
        }
    }

    private async Task<SqliteConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var pragmas = connection.CreateCommand();
            // busy_timeout: SQLite waits for the write lock itself (the CLI may be writing from another process), in
            // short steps, instead of returning BUSY to Microsoft.Data.Sqlite, whose retry sleeps 150 ms at a time.
            // synchronous=NORMAL: the usual WAL setting; a commit survives a process crash (SIGKILL), and an OS crash
            // can lose the last commits but never corrupts the database. FULL fsynced every commit.
            pragmas.CommandText = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;";
            await pragmas.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}

/// <summary>The transaction batched leases share; its members learn together whether it committed.</summary>
internal sealed class WriteBatch
{
    public TaskCompletionSource Committed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Members { get; set; }
}

/// <summary>A database connection, lent until disposed.</summary>
public sealed class SqliteLease(SqliteConnection connection, Func<SqliteConnection, ValueTask> release, PreparedStatements? statements = null) : IAsyncDisposable
{
    private int returned;

    public SqliteConnection Connection =>
        Volatile.Read(ref returned) == 0 ? connection : throw new ObjectDisposedException(nameof(SqliteLease));

    /// <summary>
    /// The command for <paramref name="sql"/>, compiled once for the shared connection and reused, with no parameters
    /// bound yet. For the statements every login runs; <paramref name="sql"/> must be a constant, never built from input.
    /// </summary>
    public SqliteCommand Prepared(string sql, SqliteTransaction? transaction = null)
    {
        _ = Connection;
        var command = (statements ?? throw new InvalidOperationException("Only the shared connection keeps prepared statements.")).For(sql);
        command.Transaction = transaction;
        return command;
    }

    public ValueTask DisposeAsync() =>
        Interlocked.Exchange(ref returned, 1) == 0 ? release(connection) : ValueTask.CompletedTask;
}

/// <summary>
/// Commands kept for the life of one connection. Microsoft.Data.Sqlite keeps a command's compiled statements between
/// executions as long as its text is unchanged, but not across command objects, which is what Dapper creates per call.
/// </summary>
public sealed class PreparedStatements(SqliteConnection connection) : IDisposable
{
    private readonly Dictionary<string, SqliteCommand> commands = new(StringComparer.Ordinal);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2100", Justification = "Callers pass their own constant statements; values are bound as parameters.")]
    internal SqliteCommand For(string sql)
    {
        if (!commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            commands.Add(sql, command);
        }

        command.Parameters.Clear();
        return command;
    }

    public void Dispose()
    {
        foreach (var command in commands.Values)
        {
            command.Dispose();
        }

        commands.Clear();
    }
}

public static class SqliteCommandExtensions
{
    /// <summary>Binds a named parameter; null is stored as SQL NULL.</summary>
    public static SqliteCommand With(this SqliteCommand command, string name, object? value)
    {
        command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }
}
