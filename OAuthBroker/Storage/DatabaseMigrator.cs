using Dapper;

namespace OAuthBroker.Storage;

/// <summary>Applies the numbered schema migrations at start-up; <c>PRAGMA user_version</c> records the last one applied.</summary>
public sealed class DatabaseMigrator(SqliteConnectionFactory connections) : IBrokerDatabase
{
    // Append only: a migration that has shipped is never edited.
    internal static readonly string[] Migrations =
    [
        """
        CREATE TABLE signing_keys (
            kid           TEXT    NOT NULL PRIMARY KEY,
            algorithm     TEXT    NOT NULL,
            protected_key BLOB    NOT NULL,  -- PKCS#8 private key, encrypted with ASP.NET Data Protection
            created_at    INTEGER NOT NULL,  -- Unix milliseconds
            retired_at    INTEGER NULL
        );
        CREATE TABLE pending_logins (
            state_hash         BLOB    NOT NULL PRIMARY KEY, -- SHA-256 of the state sent to GitHub
            browser_hash       BLOB    NOT NULL,             -- SHA-256 of the browser-binding cookie value
            instance_id        TEXT    NOT NULL,
            redirect_uri       TEXT    NOT NULL,
            instance_state     TEXT    NULL,
            scope              TEXT    NOT NULL,
            protected_verifier BLOB    NOT NULL,             -- PKCE verifier, encrypted with Data Protection
            created_at         INTEGER NOT NULL,
            expires_at         INTEGER NOT NULL,
            consumed_at        INTEGER NULL
        );
        CREATE INDEX ix_pending_logins_expires_at ON pending_logins (expires_at);
        CREATE TABLE users (
            id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
            github_id      INTEGER NOT NULL UNIQUE,
            login          TEXT    NOT NULL,
            name           TEXT    NULL,
            email          TEXT    NULL,
            avatar_url     TEXT    NULL,
            first_login_at INTEGER NOT NULL,
            last_login_at  INTEGER NOT NULL
        );
        """,
        """
        CREATE TABLE audit_events (
            id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
            at          INTEGER NOT NULL,  -- Unix milliseconds
            kind        TEXT    NOT NULL,  -- 'login' or 'admin'
            instance_id TEXT    NULL,
            actor       TEXT    NULL,      -- admin: who made the change; login: the GitHub login, when known
            action      TEXT    NOT NULL,  -- login: the outcome; admin: what was done
            reason      TEXT    NULL,
            client_ip   TEXT    NULL,
            before_json TEXT    NULL,      -- instance entry before an admin change (shared secrets redacted)
            after_json  TEXT    NULL
        );
        CREATE INDEX ix_audit_events_at ON audit_events (at);
        CREATE INDEX ix_audit_events_instance ON audit_events (instance_id, id);
        """,
        """
        ALTER TABLE pending_logins ADD COLUMN response_mode TEXT NOT NULL DEFAULT 'query';
        """,
        // Pending logins are found by their expiry time, which the state carries, instead of by the hash of the state:
        // new rows and lookups stay at the end of the table and of its one index, so the cost of a login no longer
        // grows with the number of recent ones (the random hash index had outgrown SQLite's page cache under load).
        // Logins in flight during the upgrade are dropped: their state carries no expiry; they are started again.
        """
        DROP TABLE pending_logins;
        CREATE TABLE pending_logins (
            id                 INTEGER NOT NULL PRIMARY KEY,
            state_hash         BLOB    NOT NULL,             -- SHA-256 of the state sent to GitHub
            browser_hash       BLOB    NOT NULL,             -- SHA-256 of the browser-binding cookie value
            instance_id        TEXT    NOT NULL,
            redirect_uri       TEXT    NOT NULL,
            instance_state     TEXT    NULL,
            scope              TEXT    NOT NULL,
            protected_verifier BLOB    NOT NULL,             -- PKCE verifier, encrypted with Data Protection
            response_mode      TEXT    NOT NULL,
            created_at         INTEGER NOT NULL,             -- Unix milliseconds
            expires_at         INTEGER NOT NULL,             -- Unix milliseconds; also in the state, to find the row
            consumed_at        INTEGER NULL
        );
        CREATE INDEX ix_pending_logins_expires_at ON pending_logins (expires_at);
        """,
        // The PKCE verifier is derived from the browser's secret instead of stored under Data Protection. Logins in
        // flight during the upgrade are dropped (their verifier was the stored one); used ones stay for replay checks.
        """
        DELETE FROM pending_logins WHERE consumed_at IS NULL;
        ALTER TABLE pending_logins DROP COLUMN protected_verifier;
        """,
        // A new signing key is published in the JWKS before it signs, so instances whose cached JWKS lacks it do not
        // reject its tokens. NULL: it signed from its creation (every key made before this migration).
        """
        ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NULL;
        """,
        // Refused requests are counted, one row per source, reason and minute, instead of a row each: a flood of bad
        // requests then grows the table by a bounded amount per minute.
        """
        ALTER TABLE audit_events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE audit_events ADD COLUMN bucket BLOB NULL;
        CREATE UNIQUE INDEX ux_audit_events_bucket ON audit_events (bucket) WHERE bucket IS NOT NULL;
        """,
        // Admin sessions server-side, so that sign-out and removal from the admin list end them at once; and the GitHub
        // id each admin login was first seen with, so that a renamed login claimed by someone else is no admin.
        """
        CREATE TABLE admin_sessions (
            id         INTEGER NOT NULL PRIMARY KEY,
            id_hash    BLOB    NOT NULL UNIQUE,       -- SHA-256 of the session id the cookie carries
            github_id  INTEGER NOT NULL,
            login      TEXT    NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            revoked_at INTEGER NULL
        );
        CREATE TABLE admin_pins (
            login     TEXT    NOT NULL PRIMARY KEY,   -- lower-case
            github_id INTEGER NOT NULL,
            pinned_at INTEGER NOT NULL
        );
        """,
        // The refresh relay: each refresh token handed to an instance, by its hash, with the one refresh that used it.
        """
        CREATE TABLE refresh_tokens (
            token_hash  BLOB    NOT NULL PRIMARY KEY,  -- SHA-256 of the GitHub refresh token; never the token
            instance_id TEXT    NOT NULL,
            user_id     INTEGER NOT NULL,
            issued_at   INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL,
            claimed_at  INTEGER NULL,                  -- a refresh with it is at GitHub
            answered_at INTEGER NULL,
            outcome     TEXT    NULL,                  -- 'issued' or 'invalid_grant'
            answer      TEXT    NULL                   -- the response as issued: signed, its tokens encrypted to the instance
        ) WITHOUT ROWID;
        CREATE INDEX ix_refresh_tokens_expires_at ON refresh_tokens (expires_at);
        """,
        // private_key_jwt: each accepted assertion's jti until it expires, so that none is accepted twice.
        """
        CREATE TABLE client_assertions (
            jti_hash    BLOB    NOT NULL PRIMARY KEY,  -- SHA-256 of an accepted private_key_jwt assertion's instance and jti
            instance_id TEXT    NOT NULL,
            expires_at  INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX ix_client_assertions_expires_at ON client_assertions (expires_at);
        """,
        // Revocation: which instance each GitHub access token went to, by hash, so that it may revoke its own only.
        """
        CREATE TABLE access_tokens (
            token_hash  BLOB    NOT NULL PRIMARY KEY,  -- SHA-256 of the GitHub access token; never the token
            instance_id TEXT    NOT NULL,
            user_id     INTEGER NOT NULL,
            issued_at   INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX ix_access_tokens_expires_at ON access_tokens (expires_at);
        """,
        // The instances each user signed in to, by GitHub integration and scope set: what /account lists, and how the
        // admin page sees a user near GitHub's ten tokens per user, app and scope set.
        """
        CREATE TABLE user_instances (
            user_id     INTEGER NOT NULL,
            instance_id TEXT    NOT NULL,
            provider    TEXT    NOT NULL,
            scope       TEXT    NOT NULL,
            tokens      INTEGER NOT NULL,  -- tokens GitHub issued through logins (a refresh replaces one, adds none)
            first_at    INTEGER NOT NULL,
            last_at     INTEGER NOT NULL,
            PRIMARY KEY (user_id, provider, scope, instance_id)
        ) WITHOUT ROWID;
        CREATE INDEX ix_user_instances_last_at ON user_instances (last_at);
        """,
        // An admin ended a user's access: the next refresh of any of their refresh tokens revokes their grant at GitHub.
        """
        ALTER TABLE refresh_tokens ADD COLUMN revoke_grant_at INTEGER NULL;
        CREATE INDEX ix_refresh_tokens_user ON refresh_tokens (user_id);
        """,
        // OpenID Connect: a pending login's client request (nonce, the client's PKCE challenge, its scopes: no secret),
        // and the one-time authorization codes, by hash, with what their redemption answers.
        """
        ALTER TABLE pending_logins ADD COLUMN request TEXT NULL;
        CREATE TABLE authorization_codes (
            code_hash   BLOB    NOT NULL PRIMARY KEY,  -- SHA-256 of the code; never the code
            instance_id TEXT    NOT NULL,
            user_id     INTEGER NOT NULL,
            grant_json  TEXT    NOT NULL,              -- redirect URI, PKCE challenge, nonce, scopes; the GitHub token only as a JWE to the instance
            created_at  INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL,
            consumed_at INTEGER NULL,
            replayed_at INTEGER NULL
        ) WITHOUT ROWID;
        CREATE INDEX ix_authorization_codes_expires_at ON authorization_codes (expires_at);
        """,
        // GitHub App webhooks: deliveries seen (by GitHub's delivery id, so a repeat is not processed again), the
        // installations the install relay created and for which instances, what the user revoked, and the outbox of
        // events relayed to instances (delivered at least once, in order per installation or user).
        """
        ALTER TABLE users ADD COLUMN revoked_at INTEGER NULL;            -- the user revoked the broker's GitHub App
        ALTER TABLE refresh_tokens ADD COLUMN revoked_at INTEGER NULL;   -- its GitHub App authorization was revoked
        CREATE TABLE webhook_deliveries (
            delivery_id TEXT    NOT NULL PRIMARY KEY,  -- X-GitHub-Delivery
            event       TEXT    NOT NULL,
            received_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX ix_webhook_deliveries_received_at ON webhook_deliveries (received_at);
        CREATE TABLE installations (
            installation_id INTEGER NOT NULL PRIMARY KEY,
            account_login   TEXT    NULL,
            status          TEXT    NOT NULL,  -- active, suspended, deleted
            updated_at      INTEGER NOT NULL
        );
        CREATE TABLE installation_instances (
            installation_id INTEGER NOT NULL,
            instance_id     TEXT    NOT NULL,
            user_id         INTEGER NULL,
            created_at      INTEGER NOT NULL,
            PRIMARY KEY (installation_id, instance_id)
        ) WITHOUT ROWID;
        CREATE TABLE webhook_outbox (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            instance_id     TEXT    NOT NULL,
            delivery_id     TEXT    NOT NULL,
            event           TEXT    NOT NULL,
            ordering_key    TEXT    NOT NULL,  -- installation:<id> or user:<id>: delivered in id order within it
            payload         TEXT    NOT NULL,  -- GitHub's event, signed into a JWS at each attempt
            created_at      INTEGER NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            claimed_until   INTEGER NULL,
            last_error      TEXT    NULL,
            delivered_at    INTEGER NULL,
            dead_at         INTEGER NULL
        );
        CREATE INDEX ix_webhook_outbox_pending ON webhook_outbox (instance_id, ordering_key, id) WHERE delivered_at IS NULL AND dead_at IS NULL;
        CREATE INDEX ix_webhook_outbox_created_at ON webhook_outbox (created_at);
        """,
        // RFC 7009 allows revoking a refresh token with its access token, and the broker does: GitHub documents
        // DELETE /applications/{client_id}/token as revoking that one token, so the broker stops relaying the refresh
        // token that came with it. Which refresh token came with which access token, and why a refresh token died.
        """
        ALTER TABLE access_tokens ADD COLUMN refresh_hash BLOB NULL;     -- SHA-256 of the refresh token issued with it
        ALTER TABLE refresh_tokens ADD COLUMN revoked_by TEXT NULL;      -- 'access_token' when revoked with it; NULL: the app (webhook)
        """,
    ];

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        // WAL lets readers (readiness, admin queries, the CLI) proceed while a login writes; the setting persists in the file.
        await connection.ExecuteAsync("PRAGMA journal_mode = WAL;");
        var version = await connection.ExecuteScalarAsync<int>("PRAGMA user_version;");
        if (version > Migrations.Length)
        {
            throw new Broker.StartupException(
                $"The database {connection.DataSource} is at schema version {version}, and this broker knows versions up to {Migrations.Length}: a newer broker has migrated it. Run that version (or newer), or restore the backup taken before the upgrade.");
        }

        for (var next = version; next < Migrations.Length; next++)
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await connection.ExecuteAsync(Migrations[next], transaction: transaction);
            // PRAGMA takes no parameters; the value is our own loop counter.
            await connection.ExecuteAsync($"PRAGMA user_version = {next + 1};", transaction: transaction);
            await transaction.CommitAsync(cancellationToken);
        }
    }

    public static int LatestVersion => Migrations.Length;

    public async Task<(bool Ready, string Detail)> CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var lease = await connections.OpenReaderAsync(cancellationToken);
            var version = await lease.Connection.ExecuteScalarAsync<int>("PRAGMA user_version;");
            return (version == LatestVersion, $"SQLite, schema version {version}");
        }
        catch (Microsoft.Data.Sqlite.SqliteException exception)
        {
            return (false, $"SQLite error {exception.SqliteErrorCode}");
        }
    }
}
