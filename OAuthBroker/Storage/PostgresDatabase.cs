using Npgsql;
using OAuthBroker.Broker;

namespace OAuthBroker.Storage;

/// <summary>
/// The PostgreSQL database every replica shares: one pooled data source (Npgsql's slim builder, which the native
/// executable can trim, with TLS so that <c>sslmode</c> in the connection string works) and its numbered migrations.
/// </summary>
public sealed class PostgresDatabase : IBrokerDatabase, IAsyncDisposable
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
        CREATE TABLE users (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            github_id      bigint NOT NULL UNIQUE,
            login          text   NOT NULL,
            name           text   NULL,
            email          text   NULL,
            avatar_url     text   NULL,
            first_login_at bigint NOT NULL,
            last_login_at  bigint NOT NULL
        );
        CREATE TABLE audit_events (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at          bigint NOT NULL,
            kind        text   NOT NULL,  -- 'login' or 'admin'
            instance_id text   NULL,
            actor       text   NULL,      -- admin: who made the change; login: the GitHub login, when known
            action      text   NOT NULL,  -- login: the outcome; admin: what was done
            reason      text   NULL,
            client_ip   text   NULL,
            before_json text   NULL,      -- instance entry before an admin change (shared secrets redacted)
            after_json  text   NULL,
            count       bigint NOT NULL DEFAULT 1,
            bucket      bytea  NULL       -- refusals: SHA-256 of minute, source, instance and reason
        );
        CREATE INDEX ix_audit_events_at ON audit_events (at);
        CREATE INDEX ix_audit_events_instance ON audit_events (instance_id, id);
        CREATE UNIQUE INDEX ux_audit_events_bucket ON audit_events (bucket) WHERE bucket IS NOT NULL;
        CREATE TABLE signing_keys (
            kid           text   NOT NULL PRIMARY KEY,
            algorithm     text   NOT NULL,
            protected_key bytea  NOT NULL,  -- PKCS#8 private key, encrypted with ASP.NET Data Protection
            created_at    bigint NOT NULL,
            activates_at  bigint NULL,      -- NULL: signs from its creation
            retired_at    bigint NULL
        );
        CREATE TABLE admin_sessions (
            id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id_hash    bytea  NOT NULL UNIQUE,  -- SHA-256 of the session id the cookie carries
            github_id  bigint NOT NULL,
            login      text   NOT NULL,
            created_at bigint NOT NULL,
            expires_at bigint NOT NULL,
            revoked_at bigint NULL
        );
        CREATE INDEX ix_admin_sessions_expires_at ON admin_sessions (expires_at);
        CREATE TABLE admin_pins (
            login     text   NOT NULL PRIMARY KEY,  -- lower-case
            github_id bigint NOT NULL,
            pinned_at bigint NOT NULL
        );
        CREATE TABLE data_protection_keys (
            name text NOT NULL PRIMARY KEY,  -- Data Protection's friendly name, key-{guid}
            xml  text NOT NULL               -- its secrets encrypted with the key-encryption key
        );
        """,
        """
        CREATE TABLE allowlist (
            id         smallint NOT NULL PRIMARY KEY CHECK (id = 1),  -- one document, read and written whole
            sha256     text     NOT NULL,  -- hex SHA-256 of the plain document: its ETag, and what a poll compares
            document   bytea    NOT NULL,  -- the JSON document, encrypted with the Data Protection key ring
            updated_at bigint   NOT NULL
        );
        """,
        """
        CREATE TABLE refresh_tokens (
            token_hash  bytea  NOT NULL PRIMARY KEY,  -- SHA-256 of the GitHub refresh token; never the token
            instance_id text   NOT NULL,
            user_id     bigint NOT NULL,
            issued_at   bigint NOT NULL,
            expires_at  bigint NOT NULL,
            claimed_at  bigint NULL,                  -- a refresh with it is at GitHub
            answered_at bigint NULL,
            outcome     text   NULL,                  -- 'issued' or 'invalid_grant'
            answer      text   NULL                   -- the response as issued: signed, its tokens encrypted to the instance
        );
        CREATE INDEX ix_refresh_tokens_expires_at ON refresh_tokens (expires_at);
        """,
        """
        CREATE TABLE client_assertions (
            jti_hash    bytea  NOT NULL PRIMARY KEY,  -- SHA-256 of an accepted private_key_jwt assertion's instance and jti
            instance_id text   NOT NULL,
            expires_at  bigint NOT NULL
        );
        CREATE INDEX ix_client_assertions_expires_at ON client_assertions (expires_at);
        """,
        """
        CREATE TABLE access_tokens (
            token_hash  bytea  NOT NULL PRIMARY KEY,  -- SHA-256 of the GitHub access token; never the token
            instance_id text   NOT NULL,
            user_id     bigint NOT NULL,
            issued_at   bigint NOT NULL,
            expires_at  bigint NOT NULL
        );
        CREATE INDEX ix_access_tokens_expires_at ON access_tokens (expires_at);
        """,
        """
        CREATE TABLE user_instances (
            user_id     bigint NOT NULL,
            instance_id text   NOT NULL,
            provider    text   NOT NULL,
            scope       text   NOT NULL,
            tokens      bigint NOT NULL,  -- tokens GitHub issued through logins (a refresh replaces one, adds none)
            first_at    bigint NOT NULL,
            last_at     bigint NOT NULL,
            PRIMARY KEY (user_id, provider, scope, instance_id)
        );
        CREATE INDEX ix_user_instances_last_at ON user_instances (last_at);
        """,
        """
        ALTER TABLE refresh_tokens ADD COLUMN revoke_grant_at bigint NULL;
        CREATE INDEX ix_refresh_tokens_user ON refresh_tokens (user_id);
        """,
        """
        ALTER TABLE pending_logins ADD COLUMN request text NULL;
        CREATE TABLE authorization_codes (
            code_hash   bytea  NOT NULL PRIMARY KEY,
            instance_id text   NOT NULL,
            user_id     bigint NOT NULL,
            grant_json  text   NOT NULL,
            created_at  bigint NOT NULL,
            expires_at  bigint NOT NULL,
            consumed_at bigint NULL,
            replayed_at bigint NULL
        );
        CREATE INDEX ix_authorization_codes_expires_at ON authorization_codes (expires_at);
        """,
        // GitHub App webhooks: deliveries seen (by GitHub's delivery id, so a repeat is not processed again), the
        // installations the install relay created and for which instances, what the user revoked, and the outbox of
        // events relayed to instances (delivered at least once, in order per installation or user).
        """
        ALTER TABLE users ADD COLUMN revoked_at bigint  NULL;            -- the user revoked the broker's GitHub App
        ALTER TABLE refresh_tokens ADD COLUMN revoked_at bigint  NULL;   -- its GitHub App authorization was revoked
        CREATE TABLE webhook_deliveries (
            delivery_id text    NOT NULL PRIMARY KEY,  -- X-GitHub-Delivery
            event       text    NOT NULL,
            received_at bigint  NOT NULL
        );
        CREATE INDEX ix_webhook_deliveries_received_at ON webhook_deliveries (received_at);
        CREATE TABLE installations (
            installation_id bigint NOT NULL PRIMARY KEY,
            account_login   text    NULL,
            status          text    NOT NULL,  -- active, suspended, deleted
            updated_at      bigint  NOT NULL
        );
        CREATE TABLE installation_instances (
            installation_id bigint  NOT NULL,
            instance_id     text    NOT NULL,
            user_id         bigint  NULL,
            created_at      bigint  NOT NULL,
            PRIMARY KEY (installation_id, instance_id)
        );
        CREATE TABLE webhook_outbox (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            instance_id     text    NOT NULL,
            delivery_id     text    NOT NULL,
            event           text    NOT NULL,
            ordering_key    text    NOT NULL,  -- installation:<id> or user:<id>: delivered in id order within it
            payload         text    NOT NULL,  -- GitHub's event, signed into a JWS at each attempt
            created_at      bigint  NOT NULL,
            attempts        bigint  NOT NULL DEFAULT 0,
            next_attempt_at bigint  NOT NULL,
            claimed_until   bigint  NULL,
            last_error      text    NULL,
            delivered_at    bigint  NULL,
            dead_at         bigint  NULL
        );
        CREATE INDEX ix_webhook_outbox_pending ON webhook_outbox (instance_id, ordering_key, id) WHERE delivered_at IS NULL AND dead_at IS NULL;
        CREATE INDEX ix_webhook_outbox_created_at ON webhook_outbox (created_at);
        """,
        // The refresh token issued with each access token, and why a refresh token died (DatabaseMigrator says why).
        """
        ALTER TABLE access_tokens ADD COLUMN refresh_hash bytea NULL;
        ALTER TABLE refresh_tokens ADD COLUMN revoked_by text NULL;
        """,
    ];

    /// <summary>More than the statements the broker runs, so that none is evicted by another.</summary>
    internal const int AutoPreparedStatements = 64;

    private readonly NpgsqlDataSource dataSource;

    public PostgresDatabase(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new StartupException(
                "Broker:Database is postgres, and ConnectionStrings:Broker is not set: give it as the environment variable ConnectionStrings__Broker, e.g. Host=db.example.com;Database=oauthbroker;Username=oauthbroker;Password=...;SSL Mode=VerifyFull.");
        }

        try
        {
            var builder = new NpgsqlSlimDataSourceBuilder(connectionString);
            builder.EnableTransportSecurity();
            // The broker runs a few dozen constant statements over and over: prepared on each pooled connection after a
            // few uses, PostgreSQL parses and plans them once instead of on every login (unless the connection string
            // sets its own Max Auto Prepare).
            if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0)
            {
                builder.ConnectionStringBuilder.MaxAutoPrepare = AutoPreparedStatements;
            }

            // No statement of the broker leaves session state behind (no SET, no session-level lock, no temporary
            // table; the one LISTEN connection is held for the process's life), so a pooled connection needs no reset
            // statement before its next use: that reset was a further seven commands on every open.
            builder.ConnectionStringBuilder.NoResetOnClose = true;

            dataSource = builder.Build();
        }
        catch (ArgumentException exception)
        {
            // The message names the faulty keyword, never the value (which may be the password).
            throw new StartupException($"ConnectionStrings:Broker is not a valid PostgreSQL connection string: {exception.Message}", exception);
        }
    }

    public static int LatestVersion => Migrations.Length;

    public ValueTask<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken) => dataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>For Data Protection's synchronous key-ring interface only.</summary>
    public NpgsqlConnection Open() => dataSource.OpenConnection();

    /// <summary>Runs one statement with positional parameters (<c>$1</c>, <c>$2</c>, …; null is SQL NULL); returns the rows it changed.</summary>
    public async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken, params object?[] values)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = Command(connection, sql, values);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Deletes the rows of <paramref name="table"/> (which has an <c>id</c> key) matching <paramref name="condition"/>,
    /// <see cref="SqliteConnectionFactory.PurgeBatch"/> at a time, as the SQLite purge does: a large backlog is deleted
    /// without one long transaction over rows logins still use. Table and condition are the caller's constants.
    /// </summary>
    public async Task<int> DeleteInBatchesAsync(string table, string condition, CancellationToken cancellationToken, params object?[] values)
    {
        var sql = $"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {condition} LIMIT {SqliteConnectionFactory.PurgeBatch})";
        var total = 0;
        int deleted;
        do
        {
            deleted = await ExecuteAsync(sql, cancellationToken, values);
            total += deleted;
        }
        while (deleted == SqliteConnectionFactory.PurgeBatch);

        return total;
    }

    /// <summary>Runs one query with positional parameters and reads every row with <paramref name="read"/>.</summary>
    public async Task<List<T>> QueryAsync<T>(string sql, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken, params object?[] values)
    {
        ArgumentNullException.ThrowIfNull(read);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = Command(connection, sql, values);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(read(reader));
        }

        return rows;
    }

    /// <summary>
    /// Runs one statement on a connection the caller holds, in its transaction if any: for what must stay on one
    /// connection (LISTEN, an advisory lock and the statements it guards).
    /// </summary>
    public static async Task<int> ExecuteOnAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken, params object?[] values)
    {
        await using var command = Command(connection, sql, values, transaction);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary><paramref name="sql"/> is always the caller's constant; values travel as parameters, never in the text.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2100", Justification = "Callers pass constant SQL; values are parameters.")]
    public static NpgsqlCommand Command(NpgsqlConnection connection, string sql, IReadOnlyList<object?> values, NpgsqlTransaction? transaction = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        }

        return command;
    }

    /// <summary>
    /// Applies the migrations this build knows and the database lacks, under a transaction-scoped advisory lock: a replica
    /// that starts while another migrates waits, then finds nothing left to do. A database migrated by a newer build is
    /// refused, since this build's statements may no longer fit it.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteOnAsync(connection, transaction, $"SELECT pg_advisory_xact_lock({MigrationLock})", cancellationToken);
        await ExecuteOnAsync(connection, transaction, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)", cancellationToken);
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
                await ExecuteOnAsync(connection, transaction, Migrations[next], cancellationToken);
            }

            // The version is our own counter, never input.
            await ExecuteOnAsync(connection, transaction, version == 0 ? $"INSERT INTO schema_version VALUES ({Migrations.Length})" : $"UPDATE schema_version SET version = {Migrations.Length}", cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<(bool Ready, string Detail)> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            var version = (await QueryAsync("SELECT version FROM schema_version", reader => reader.GetInt32(0), cancellationToken)).SingleOrDefault();
            return (version == LatestVersion, $"PostgreSQL, schema version {version}");
        }
        catch (NpgsqlException exception)
        {
            // The SQL state or the socket error, never the connection string.
            return (false, exception is PostgresException postgres ? $"PostgreSQL error {postgres.SqlState}" : "PostgreSQL unreachable");
        }
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();
}
