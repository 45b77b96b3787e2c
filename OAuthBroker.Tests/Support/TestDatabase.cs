namespace OAuthBroker.Tests.Support;

/// <summary>
/// Which backend the brokers that tests start use: SQLite, or with <c>OAUTHBROKER_TEST_DATABASE=postgres</c> (the
/// second pass of scripts/test.sh) PostgreSQL, a fresh database on the test cluster for each broker.
/// </summary>
public static class TestDatabase
{
    public static bool IsPostgres => Environment.GetEnvironmentVariable("OAUTHBROKER_TEST_DATABASE") == "postgres";

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<string>> DatabasesByFolder = new(StringComparer.Ordinal);

    /// <summary>The connection string of a new, empty database.</summary>
    public static string NewPostgresDatabase() => PostgresCluster.GetAsync().GetAwaiter().GetResult().CreateDatabaseAsync().GetAwaiter().GetResult();

    /// <summary>One database per test folder: brokers started on the same folder share it, as they share broker.db on SQLite.</summary>
    public static string PostgresDatabaseFor(string folder) => DatabasesByFolder.GetOrAdd(folder, _ => new Lazy<string>(NewPostgresDatabase)).Value;
}

/// <summary>
/// Marks a test of what only the file-kept allowlist has (hand edits, file events, the lock file, file modes): with
/// PostgreSQL the database holds the allowlist, so the PostgreSQL pass of scripts/test.sh leaves these out.
/// </summary>
public static class StoredIn
{
    public const string Trait = "AllowlistStoredIn";

    public const string File = "file";
}
