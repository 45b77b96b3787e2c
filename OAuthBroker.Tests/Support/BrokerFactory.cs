using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// The real broker (its Program, pipeline, SQLite file and crypto) with only GitHub faked, a temporary data folder and,
/// where a test needs it, a clock it controls.
/// </summary>
public sealed class BrokerFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> settings;

    public BrokerFactory(FakeGitHub gitHub, TempDirectory folder, string allowlistJson, IDictionary<string, string?>? overrides = null, FakeTimeProvider? clock = null)
    {
        GitHub = gitHub;
        Folder = folder;
        Clock = clock;
        File.WriteAllText(AllowlistPath, allowlistJson);
        settings = gitHub.BrokerSettings();
        settings["Broker:PublicUrl"] = "http://localhost";
        settings["Broker:AllowlistPath"] = AllowlistPath;
        settings["Broker:DataPath"] = DataPath;
        settings["GitHub:Timeout"] = "00:00:10";
        if (TestDatabase.IsPostgres)
        {
            settings["Broker:Database"] = "postgres";
            // Brokers on the same folder share a database, as they share broker.db on SQLite.
            settings["ConnectionStrings:Broker"] = TestDatabase.PostgresDatabaseFor(folder.Path);
        }

        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
    }

    public FakeGitHub GitHub { get; }

    public TempDirectory Folder { get; }

    public FakeTimeProvider? Clock { get; }

    public LogCapture Logs { get; } = new();

    public string AllowlistPath => Path.Combine(Folder.Path, "allowed-redirects.json");

    public string DataPath => Path.Combine(Folder.Path, "data");

    /// <summary>Rows of the broker's pending logins, counted from outside the broker as another process would.</summary>
    public Task<long> CountPendingLoginsAsync() => ScalarAsync("SELECT COUNT(*) FROM pending_logins");

    /// <summary>One number from the broker's database (SQLite or PostgreSQL), read from outside the broker as another process would.</summary>
    public async Task<long> ScalarAsync(string sql) => Convert.ToInt64(await ValueAsync(sql), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The first value <paramref name="sql"/> selects, or the rows it changed, run from outside the broker.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2100", Justification = "Tests pass their own constant SQL.")]
    public async Task<object?> ValueAsync(string sql)
    {
        await using var connection = OpenDatabase();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return sql.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) ? await command.ExecuteScalarAsync() : await command.ExecuteNonQueryAsync();
    }

    public bool UsesPostgres => settings.GetValueOrDefault("Broker:Database") == "postgres";

    /// <summary>
    /// The allowlist as the broker keeps it, read from outside as an admin would: the file with SQLite, the database
    /// (through <c>allowlist export</c>, since it is encrypted there) with PostgreSQL.
    /// </summary>
    public async Task<string> ReadStoredAllowlistAsync()
    {
        if (!UsesPostgres)
        {
            return await File.ReadAllTextAsync(AllowlistPath);
        }

        var exported = Path.Combine(Folder.Path, $"exported-{Guid.NewGuid():N}.json");
        var result = await AdminCli.RunAsync(this, "allowlist", "export", exported);
        result.ExitCode.Should().Be(0, result.Error);
        try
        {
            return await File.ReadAllTextAsync(exported);
        }
        finally
        {
            File.Delete(exported);
        }
    }

    /// <summary>Replaces the allowlist as an admin would: the file written atomically with SQLite, <c>allowlist import</c> with PostgreSQL.</summary>
    public async Task ReplaceAllowlistAsync(string json)
    {
        if (!UsesPostgres)
        {
            var temporary = AllowlistPath + ".tmp";
            await File.WriteAllTextAsync(temporary, json);
            File.Move(temporary, AllowlistPath, overwrite: true);
            return;
        }

        var imported = Path.Combine(Folder.Path, $"imported-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(imported, json);
        var result = await AdminCli.RunAsync(this, "allowlist", "import", imported);
        result.ExitCode.Should().Be(0, result.Error);
    }

    public System.Data.Common.DbConnection OpenDatabase() => UsesPostgres
        ? new Npgsql.NpgsqlConnection(settings["ConnectionStrings:Broker"])
        : new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(DataPath, "broker.db")}");

    public string PublicUrl => settings["Broker:PublicUrl"]!;

    /// <summary>The configuration this broker runs with, for a command or a second process that must match it.</summary>
    public IReadOnlyDictionary<string, string?> Settings => settings;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.AddProvider(Logs).SetMinimumLevel(LogLevel.Debug));
        builder.ConfigureTestServices(services =>
        {
            if (Clock is not null)
            {
                services.AddSingleton<TimeProvider>(Clock);
            }

            // TestServer has no socket; a real Kestrel would report the peer (here: a proxy on the same host).
            services.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter, LoopbackPeer>();
        });
    }

    public Browser NewBrowser(string baseAddress = "http://localhost") => new(this, baseAddress);

    /// <summary>
    /// Every broker a test starts is checked when it stops: no access token, refresh token or client secret that the
    /// fake GitHub issued may appear in the captured logs or in any file under Broker:DataPath.
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        GC.SuppressFinalize(this);
        SecretScan.AssertAbsent(GitHub.Secrets, Logs.AllText, DataPath, UsesPostgres ? settings["ConnectionStrings:Broker"] : null);
    }
}

internal sealed class LoopbackPeer : Microsoft.AspNetCore.Hosting.IStartupFilter
{
    public Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> Configure(Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> next) => app =>
    {
        app.Use(async (Microsoft.AspNetCore.Http.HttpContext context, Func<Task> nextMiddleware) =>
        {
            context.Connection.RemoteIpAddress ??= System.Net.IPAddress.Loopback;
            await nextMiddleware();
        });
        next(app);
    };
}

/// <summary>A folder under the system temp directory, deleted with the test.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("oauthbroker-tests-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process that has not let go yet; the OS cleans temp.
        }
    }
}

public static class SecretScan
{
    /// <param name="postgres">The broker's PostgreSQL database, when it uses one: every row of every table is scanned too.</param>
    public static void AssertAbsent(IEnumerable<string> secrets, string logs, string dataPath, string? postgres = null)
    {
        var files = Directory.Exists(dataPath) ? Directory.EnumerateFiles(dataPath, "*", SearchOption.AllDirectories).ToList() : [];
        // SQLite removes its -wal and -shm files when the last connection closes, after copying them into the
        // database file; one that vanished between listing and reading is read in that file instead.
        var contents = files.Select(file => (Name: file, Bytes: ReadShared(file))).Where(file => file.Bytes is not null).ToList();
        if (postgres is not null)
        {
            contents.AddRange(PostgresTables(postgres));
        }

        foreach (var secret in secrets)
        {
            if (logs.Contains(secret, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"A secret issued by the fake GitHub ({secret[..4]}...) appears in the broker's logs.");
            }

            var bytes = System.Text.Encoding.UTF8.GetBytes(secret);
            var hex = System.Text.Encoding.UTF8.GetBytes(Convert.ToHexStringLower(bytes));
            foreach (var (name, content) in contents)
            {
                if (content!.AsSpan().IndexOf(bytes) >= 0 || content.AsSpan().IndexOf(hex) >= 0)
                {
                    throw new InvalidOperationException($"A secret issued by the fake GitHub ({secret[..4]}...) appears in plain text in {name}.");
                }
            }
        }
    }

    /// <summary>Each table's rows as text (bytea as hex, so a secret stored as bytes is looked for in hex too).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2100", Justification = "Table names come from the catalogue, quoted.")]
    private static IEnumerable<(string Name, byte[]? Bytes)> PostgresTables(string connectionString)
    {
        using var connection = new Npgsql.NpgsqlConnection(connectionString);
        connection.Open();
        var tables = new List<string>();
        using (var list = new Npgsql.NpgsqlCommand("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'", connection))
        using (var reader = list.ExecuteReader())
        {
            while (reader.Read())
            {
                tables.Add(reader.GetString(0));
            }
        }

        foreach (var table in tables)
        {
            var text = new System.Text.StringBuilder();
            using var rows = new Npgsql.NpgsqlCommand($"SELECT t::text FROM \"{table}\" t", connection);
            using var reader = rows.ExecuteReader();
            while (reader.Read())
            {
                text.AppendLine(reader.GetString(0));
            }

            yield return ($"the PostgreSQL table {table}", System.Text.Encoding.UTF8.GetBytes(text.ToString()));
        }
    }

    private static byte[]? ReadShared(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            return buffer.ToArray();
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }
}

public static class StartupFailure
{
    /// <summary>
    /// Starts the broker expecting it to fail and returns what it said: the exception and the host's log. When the
    /// app fails to start, WebApplicationFactory's deferred host sometimes reports ObjectDisposedException instead of
    /// the cause, but the host has logged the cause ("Hosting failed to start") either way.
    /// </summary>
    public static string Of(BrokerFactory broker)
    {
        var start = () => broker.Server;
        var thrown = start.Should().Throw<Exception>().Which;
        return thrown + "\n" + broker.Logs.AllText;
    }
}
