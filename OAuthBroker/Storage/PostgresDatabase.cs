using Npgsql;
using OAuthBroker.Broker;

namespace OAuthBroker.Storage;

/// <summary>
/// The PostgreSQL database every replica shares: one pooled data source (Npgsql's slim builder, which the native
/// executable can trim, with TLS so that <c>sslmode</c> in the connection string works) and its numbered migrations.
/// </summary>
public sealed class PostgresDatabase : IAsyncDisposable
{
    /// <summary>Held for the length of a migration, so that replicas starting together migrate once.</summary>
    private const long MigrationLock = 0x4F41_7574_6842_726B; // "OAuthBrk"

    // Append only once released: a migration that has shipped is never edited. Times are Unix milliseconds, as in SQLite.
    internal static readonly string[] Migrations =
    [
        """
        CREATE TABLE pending_logins (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            state_hash     bytea  NOT NULL,  -- SHA-256 of the state sent to GitHub
            browser_hash   bytea  NOT NULL,  -- SHA-256 of the browser-binding cookie value
            instance_id    text   NOT NULL,
            redirect_uri   text   NOT NULL,
            instance_state text   NULL,
            scope          text   NOT NULL,
            response_mode  text   NOT NULL,
            created_at     bigint NOT NULL,
            expires_at     bigint NOT NULL,  -- also in the state, to find the row
            consumed_at    bigint NULL
        );
        CREATE INDEX ix_pending_logins_expires_at ON pending_logins (expires_at);
        """,
    ];

    private readonly NpgsqlDataSource dataSource;

    public PostgresDatabase(string connectionString)
    {
        var builder = new NpgsqlSlimDataSourceBuilder(connectionString);
        builder.EnableTransportSecurity();
        dataSource = builder.Build();
    }

    public static int LatestVersion => Migrations.Length;

    public ValueTask<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken) => dataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>
    /// Applies the migrations this build knows and the database lacks, under a transaction-scoped advisory lock: a replica
    /// that starts while another migrates waits, then finds nothing left to do. A database migrated by a newer build is
    /// refused, since this build's statements may no longer fit it.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, transaction, $"SELECT pg_advisory_xact_lock({MigrationLock})", cancellationToken);
        await ExecuteAsync(connection, transaction, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)", cancellationToken);
        await using (var read = new NpgsqlCommand("SELECT version FROM schema_version", connection, transaction))
        {
            var version = await read.ExecuteScalarAsync(cancellationToken) is int found ? found : 0;
            if (version > Migrations.Length)
            {
                throw new StartupException(
                    $"The PostgreSQL database is at schema version {version}, and this broker knows versions up to {Migrations.Length}: a newer broker has migrated it. Run that version (or newer) on every replica.");
            }

            for (var next = version; next < Migrations.Length; next++)
            {
                await ExecuteAsync(connection, transaction, Migrations[next], cancellationToken);
            }

            // The version is our own counter, never input.
            await ExecuteAsync(connection, transaction, version == 0 ? $"INSERT INTO schema_version VALUES ({Migrations.Length})" : $"UPDATE schema_version SET version = {Migrations.Length}", cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2100", Justification = "Only the migrations' constant SQL and our own counters.")]
    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();
}
