using System.Diagnostics;
using System.Security.Cryptography;
using Npgsql;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// A throw-away PostgreSQL cluster from Debian's packages, started once for the test run: <c>initdb</c> into a temporary
/// folder (as the <c>postgres</c> user when the tests run as root, since PostgreSQL refuses root), password
/// authentication (SCRAM), listening on 127.0.0.1 only, stopped and deleted when the test process exits. Each test gets
/// a database of its own.
/// </summary>
public sealed class PostgresCluster
{
    private static readonly Lazy<Task<PostgresCluster>> Shared = new(StartNewAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly string folder;
    private readonly string binaries;
    private readonly int port;
    private readonly string password;

    private PostgresCluster(string folder, string binaries, int port, string password)
    {
        this.folder = folder;
        this.binaries = binaries;
        this.port = port;
        this.password = password;
    }

    /// <summary>The server's main process (its backends are its children), for the benchmark's CPU accounting.</summary>
    public int PostmasterPid => int.Parse(File.ReadLines(Path.Combine(DataFolder, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The cluster every test shares.</summary>
    public static Task<PostgresCluster> GetAsync() => Shared.Value;

    public string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Username = "broker", Password = password, Database = database, Pooling = true }.ConnectionString;

    /// <summary>A new, empty database; its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "test_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        // The name is our own hex, never input.
#pragma warning disable CA2100
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
#pragma warning restore CA2100
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    /// <summary>Runs <paramref name="sql"/> as the cluster's superuser on its maintenance database (the test's own statements).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2100", Justification = "Tests pass their own SQL.")]
    public async Task AdministerAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Stops the server (fast shutdown: connections are cut, as in an outage); <see cref="StartServerAsync"/> brings it back.</summary>
    public Task StopServerAsync() => RunAsPostgresAsync("pg_ctl", "-D", DataFolder, "-m", "fast", "-w", "stop");

    public Task StartServerAsync() =>
        // fsync off: a test cluster never outlives a crash of its machine, and the 2-core CI runner has no I/O to spare.
        // Room for the pools (up to 100 connections each) of the many brokers the suite runs in parallel.
        RunAsPostgresAsync("pg_ctl", "-D", DataFolder, "-l", Path.Combine(folder, "server.log"), "-w", "-t", "60", "-o",
            $"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=1000", "start");

    /// <summary>A cluster of the test's own, for a test that stops its server (which the shared one must never be).</summary>
    public static async Task<PostgresCluster> StartNewAsync()
    {
        var binaries = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(version => Path.Combine(version, "bin")).Where(bin => File.Exists(Path.Combine(bin, "initdb"))).OrderBy(bin => bin, StringComparer.Ordinal).LastOrDefault()
            : null;
        if (binaries is null)
        {
            throw new InvalidOperationException("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): `bash scripts/test.sh` installs Debian's postgresql package.");
        }

        RemoveStoppedClusters();
        var folder = Directory.CreateTempSubdirectory(FolderPrefix).FullName;
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        File.WriteAllText(Path.Combine(folder, "password"), password);
        if (Environment.IsPrivilegedProcess)
        {
            await RunAsync("chown", "-R", "postgres:postgres", folder);
        }

        var cluster = new PostgresCluster(folder, binaries, LoopbackPort.Free(), password);
        await cluster.RunAsPostgresAsync("initdb", "-D", cluster.DataFolder, "-U", "broker", "--auth=scram-sha-256", $"--pwfile={Path.Combine(folder, "password")}", "-E", "UTF8", "--no-sync");
        await cluster.StartServerAsync();
        await cluster.StopWhenThisProcessEndsAsync();
        return cluster;
    }

    private const string FolderPrefix = "oauthbroker-pg-";

    private string DataFolder => Path.Combine(folder, "data");

    /// <summary>
    /// The test host may end before its exit handler has deleted the folder of a cluster it stopped: such folders (no
    /// server running, so no postmaster.pid) are removed at the next start.
    /// </summary>
    private static void RemoveStoppedClusters()
    {
        foreach (var stale in Directory.GetDirectories(Path.GetTempPath(), FolderPrefix + "*"))
        {
            if (!File.Exists(Path.Combine(stale, "data", "postmaster.pid")) && Directory.GetLastWriteTimeUtc(stale) < DateTime.UtcNow.AddMinutes(-1))
            {
                try
                {
                    Directory.Delete(stale, recursive: true);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    // Another user's, or going away already.
                }
            }
        }
    }

    /// <summary>
    /// A watchdog outside this process stops the cluster and deletes its folder within a second of the test host's end,
    /// however it ends: the test runner may kill the host before an exit handler of its own has run. The watchdog is
    /// started twice-forked, so it is no descendant of the host that a kill of the host's process tree would take along.
    /// </summary>
    private Task StopWhenThisProcessEndsAsync()
    {
        var pgCtl = Path.Combine(binaries, "pg_ctl");
        var stop = Environment.IsPrivilegedProcess ? $"runuser -u postgres -- '{pgCtl}'" : $"'{pgCtl}'";
        var watchdog = $"( while kill -0 {Environment.ProcessId} 2>/dev/null; do sleep 1; done; {stop} -D '{DataFolder}' -m immediate -w stop; rm -rf '{folder}' ) >/dev/null 2>&1 &";
        return RunAsync("sh", "-c", watchdog);
    }

    private Task RunAsPostgresAsync(string program, params string[] args) =>
        Environment.IsPrivilegedProcess
            ? RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(binaries, program), .. args])
            : RunAsync(Path.Combine(binaries, program), args);

    private static async Task RunAsync(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {process.ExitCode}: {await output}{await error}");
        }
    }
}
