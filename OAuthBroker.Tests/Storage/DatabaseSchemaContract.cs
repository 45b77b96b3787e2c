using OAuthBroker.Broker;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Storage;

/// <summary>What every backend's schema handling must do: replicas starting together migrate once; a newer schema is refused.</summary>
public abstract class DatabaseSchemaContract<TBackend> : StorageContract<TBackend>
    where TBackend : StorageBackend, new()
{

    [Fact]
    public async Task Replicas_migrating_at_once_all_succeed_and_the_database_is_ready()
    {
        var replicas = Enumerable.Range(0, 6).Select(_ => Backend.Database()).ToList();

        await Task.WhenAll(replicas.Select(replica => Task.Run(() => replica.MigrateAsync(CancellationToken.None))));

        var (ready, detail) = await replicas[0].CheckAsync(CancellationToken.None);
        ready.Should().BeTrue(detail);
    }

    [Fact]
    public async Task A_schema_newer_than_this_build_knows_stops_start_up_and_is_not_ready()
    {
        await Backend.SetSchemaVersionAsync(99);

        var migrate = () => Backend.Database().MigrateAsync(CancellationToken.None);

        (await migrate.Should().ThrowAsync<StartupException>()).Which.Message.Should().Contain("schema version 99").And.Contain("a newer broker has migrated it");
        (await Backend.Database().CheckAsync(CancellationToken.None)).Ready.Should().BeFalse();
    }
}

public sealed class SqliteDatabaseSchemaTests : DatabaseSchemaContract<SqliteBackend>;

public sealed class PostgresDatabaseSchemaTests : DatabaseSchemaContract<PostgresBackend>;
