using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

namespace OAuthBroker.Storage;

/// <summary>The one place that knows where the database lives and how to open it.</summary>
public sealed class SqliteConnectionFactory
{
    private static readonly object Configured = new();
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<SQLitePCL.sqlite3, object> configured = new();
    private readonly string connectionString;

    public SqliteConnectionFactory(IOptions<BrokerOptions> options)
    {
        var path = options.Value.DatabasePath;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            // Microsoft.Data.Sqlite retries SQLITE_BUSY until this many seconds have passed.
            DefaultTimeout = 10,
        }.ToString();
    }

    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            // Pooled opens reuse the same native connection; its settings stay, so they are applied once per connection.
            if (configured.TryAdd(connection.Handle!, Configured))
            {
                await using var pragmas = connection.CreateCommand();
                // busy_timeout: SQLite waits for the write lock itself, in short steps, instead of returning BUSY to
                // Microsoft.Data.Sqlite, whose retry sleeps 150 ms at a time (that was the p99 under load).
                // synchronous=NORMAL: the usual WAL setting; a commit survives a process crash (SIGKILL), and an OS
                // crash can lose the last commits but never corrupts the database. FULL fsynced every commit.
                pragmas.CommandText = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;";
                await pragmas.ExecuteNonQueryAsync(cancellationToken);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}
