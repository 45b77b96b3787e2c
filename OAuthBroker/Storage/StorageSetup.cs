using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

namespace OAuthBroker.Storage;

/// <summary>The database as a whole, whichever backend: its schema at start-up and its health for readiness.</summary>
public interface IBrokerDatabase
{
    /// <summary>Applies the migrations the database lacks; refuses a schema newer than this build knows.</summary>
    Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>Whether the database answers, at the schema version this build expects; the detail names no secret.</summary>
    Task<(bool Ready, string Detail)> CheckAsync(CancellationToken cancellationToken);
}

public static class StorageSetup
{
    public const string ConnectionStringName = "Broker";

    public static IServiceCollection AddStorage(this IServiceCollection services)
    {
        services.AddSingleton<SqliteConnectionFactory>();
        services.AddSingleton<DatabaseMigrator>();
        services.AddSingleton(provider => new PostgresDatabase(provider.GetRequiredService<IConfiguration>().GetConnectionString(ConnectionStringName)!));
        services.AddSingleton<IBrokerDatabase>(provider => UsesPostgres(provider) ? provider.GetRequiredService<PostgresDatabase>() : provider.GetRequiredService<DatabaseMigrator>());
        services.AddHostedService<PurgeService>();
        services.AddSingleton<DatabaseChanges>();
        services.AddHostedService<PostgresChangeListener>();
        services.AddExceptionHandler<DatabaseUnavailableHandler>();
        return services;
    }

    /// <summary>
    /// Registers both implementations of a store and hands out the one of the configured backend (<c>Broker:Database</c>).
    /// Only that one is ever constructed, so a SQLite broker opens no PostgreSQL connection and a PostgreSQL one no file.
    /// </summary>
    public static IServiceCollection AddStore<TService,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TSqlite,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TPostgres>(this IServiceCollection services)
        where TService : class
        where TSqlite : class, TService
        where TPostgres : class, TService
    {
        services.AddSingleton<TSqlite>();
        services.AddSingleton<TPostgres>();
        services.AddSingleton<TService>(provider => UsesPostgres(provider) ? provider.GetRequiredService<TPostgres>() : provider.GetRequiredService<TSqlite>());
        return services;
    }

    private static bool UsesPostgres(IServiceProvider provider) => provider.GetRequiredService<IOptions<BrokerOptions>>().Value.UsesPostgres;
}
