using Microsoft.Extensions.Options;
using OAuthBroker.Admin;
using OAuthBroker.Audit;
using OAuthBroker.Broker;
using OAuthBroker.KeyRing;
using OAuthBroker.Login;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;
using OAuthBroker.Users;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// A fresh, migrated database of one backend, and the stores on it. The contract suites run once per backend through
/// this, so a store's SQLite and PostgreSQL implementations are held to the same tests.
/// </summary>
public abstract class StorageBackend : IAsyncLifetime
{
    public abstract Task InitializeAsync();

    public abstract Task DisposeAsync();

    /// <summary>Each call a separate repository; on PostgreSQL with a connection pool of its own, as another replica has.</summary>
    public abstract IPendingLoginRepository PendingLogins();

    public abstract IUserStore Users(TimeProvider time);

    public abstract IAuditRepository Audit();

    public abstract ISigningKeyRepository SigningKeys();

    public abstract IAdminSessionRepository AdminSessions();

    public abstract OAuthBroker.Lifecycle.IRefreshTokenRepository RefreshTokens();

    public abstract OAuthBroker.Lifecycle.IClientAssertionRepository ClientAssertions();

    public abstract OAuthBroker.Lifecycle.IAccessTokenRepository AccessTokens();

    public abstract OAuthBroker.Oidc.IAuthorizationCodeRepository AuthorizationCodes();

    public abstract OAuthBroker.Webhooks.IWebhookStore Webhooks();

    /// <summary>The key ring store; one per backend, since Data Protection's replicas share it.</summary>
    public abstract IKeyRingStore KeyRing();

    /// <summary>The database as start-up and readiness see it; each call a separate one, as another replica has.</summary>
    public abstract IBrokerDatabase Database();

    /// <summary>Sets the recorded schema version, as a newer broker would have left it.</summary>
    public abstract Task SetSchemaVersionAsync(int version);
}

/// <summary>A contract suite: its tests run once per backend, each on a fresh, migrated database of that backend.</summary>
public abstract class StorageContract<TBackend> : IAsyncLifetime
    where TBackend : StorageBackend, new()
{
    protected TBackend Backend { get; } = new();

    public virtual Task InitializeAsync() => Backend.InitializeAsync();

    public virtual Task DisposeAsync() => Backend.DisposeAsync();
}

public sealed class SqliteBackend : StorageBackend
{
    private readonly TempDirectory folder = new();
    private SqliteConnectionFactory connections = null!;

    public override async Task InitializeAsync()
    {
        connections = new SqliteConnectionFactory(Options.Create(new BrokerOptions { DataPath = folder.Path }));
        await new DatabaseMigrator(connections).MigrateAsync(CancellationToken.None);
    }

    public override async Task DisposeAsync()
    {
        await connections.DisposeAsync();
        folder.Dispose();
    }

    /// <summary>SQLite is one process's database: every store shares its one connection.</summary>
    public override IPendingLoginRepository PendingLogins() => new SqlitePendingLoginRepository(connections);

    public override IUserStore Users(TimeProvider time) => new SqliteUserStore(connections, time);

    public override IAuditRepository Audit() => new SqliteAuditRepository(connections);

    public override ISigningKeyRepository SigningKeys() => new SqliteSigningKeyRepository(connections);

    public override IAdminSessionRepository AdminSessions() => new SqliteAdminSessionRepository(connections);

    public override OAuthBroker.Lifecycle.IRefreshTokenRepository RefreshTokens() => new OAuthBroker.Lifecycle.SqliteRefreshTokenRepository(connections);

    public override OAuthBroker.Lifecycle.IClientAssertionRepository ClientAssertions() => new OAuthBroker.Lifecycle.SqliteClientAssertionRepository(connections);

    public override OAuthBroker.Lifecycle.IAccessTokenRepository AccessTokens() => new OAuthBroker.Lifecycle.SqliteAccessTokenRepository(connections);

    public override OAuthBroker.Oidc.IAuthorizationCodeRepository AuthorizationCodes() => new OAuthBroker.Oidc.SqliteAuthorizationCodeRepository(connections);

    public override OAuthBroker.Webhooks.IWebhookStore Webhooks() => new OAuthBroker.Webhooks.SqliteWebhookStore(connections);

    public override IKeyRingStore KeyRing() => new FileKeyRingStore(Options.Create(new BrokerOptions { DataPath = folder.Path }));

    public override IBrokerDatabase Database() => new DatabaseMigrator(connections);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2100", Justification = "PRAGMA takes no parameters; the value is the test's own number.")]
    public override async Task SetSchemaVersionAsync(int version)
    {
        await using var lease = await connections.OpenAsync();
        await using var command = lease.Connection.CreateCommand();
        command.CommandText = $"PRAGMA user_version = {version}";
        await command.ExecuteNonQueryAsync();
    }
}

public sealed class PostgresBackend : StorageBackend
{
    private readonly List<PostgresDatabase> databases = [];

    public string ConnectionString { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        ConnectionString = await (await PostgresCluster.GetAsync()).CreateDatabaseAsync();
        await Open().MigrateAsync(CancellationToken.None);
    }

    public override async Task DisposeAsync()
    {
        foreach (var database in databases)
        {
            await database.DisposeAsync();
        }
    }

    public override IPendingLoginRepository PendingLogins() => new PostgresPendingLoginRepository(Open());

    public override IUserStore Users(TimeProvider time) => new PostgresUserStore(Open(), time);

    public override IAuditRepository Audit() => new PostgresAuditRepository(Open());

    public override ISigningKeyRepository SigningKeys() => new PostgresSigningKeyRepository(Open());

    public override IAdminSessionRepository AdminSessions() => new PostgresAdminSessionRepository(Open());

    public override OAuthBroker.Lifecycle.IRefreshTokenRepository RefreshTokens() => new OAuthBroker.Lifecycle.PostgresRefreshTokenRepository(Open());

    public override OAuthBroker.Lifecycle.IClientAssertionRepository ClientAssertions() => new OAuthBroker.Lifecycle.PostgresClientAssertionRepository(Open());

    public override OAuthBroker.Lifecycle.IAccessTokenRepository AccessTokens() => new OAuthBroker.Lifecycle.PostgresAccessTokenRepository(Open());

    public override OAuthBroker.Oidc.IAuthorizationCodeRepository AuthorizationCodes() => new OAuthBroker.Oidc.PostgresAuthorizationCodeRepository(Open());

    public override OAuthBroker.Webhooks.IWebhookStore Webhooks() => new OAuthBroker.Webhooks.PostgresWebhookStore(Open());

    public override IKeyRingStore KeyRing() => new PostgresKeyRingStore(Open());

    public override IBrokerDatabase Database() => Open();

    public override Task SetSchemaVersionAsync(int version) => Open().ExecuteAsync("UPDATE schema_version SET version = $1", CancellationToken.None, version);

    /// <summary>A data source of its own on the test's database, as another replica would have.</summary>
    public PostgresDatabase Open()
    {
        var database = new PostgresDatabase(ConnectionString);
        databases.Add(database);
        return database;
    }
}
