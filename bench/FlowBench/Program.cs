// Full-flow benchmark: the broker and a minimal reference broker, each in its own process, driven through the whole
// login flow against a fake GitHub on 127.0.0.1. Reports throughput, latency percentiles, errors by kind, server CPU
// per flow and peak memory, growth with 10,000 instances and 1,000,000 users, memory over 100,000 flows, and time to
// ready. Usage: dotnet run -c Release --project bench/FlowBench [-- --quick] [--tls]; --tls serves the fake GitHub over
// HTTPS (HTTP/1.1 and HTTP/2, as GitHub does) and writes flow-tls.json.
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using FlowBench;
using Jose;
using Microsoft.Data.Sqlite;
using OAuthBroker.Tests.Support;

var quick = args.Contains("--quick");
var warmUp = TimeSpan.FromSeconds(quick ? 1 : 3);
// Tiered compilation keeps recompiling hot methods for the first ~30 s of load (19% of the broker's CPU was the JIT
// in a window that began 6 s after start): each server is first run unmeasured until that has settled.
var settle = TimeSpan.FromSeconds(quick ? 5 : 30);
var measure = TimeSpan.FromSeconds(quick ? 3 : 10);
var soakFlows = quick ? 5_000 : 100_000;
var roundCount = quick ? 1 : 3;
var root = FindRoot();
var brokerAt = Array.IndexOf(args, "--broker");
// The broker as it ships is the native executable (bench/run.sh publishes it to artifacts/native); the JIT build of
// the same code is measured beside it. --broker PATH measures another build (a .dll runs on the shared runtime).
var jitDll = Path.Combine(root, "OAuthBroker/bin/Release/net10.0/OAuthBroker.dll");
var nativeExecutable = Path.Combine(root, "artifacts/native/OAuthBroker");
var brokerDll = brokerAt >= 0 ? Path.GetFullPath(args[brokerAt + 1]) : File.Exists(nativeExecutable) ? nativeExecutable : jitDll;
var referenceDll = Path.Combine(root, "bench/ReferenceBroker/bin/Release/net10.0/ReferenceBroker.dll");
var grantPeer = Path.Combine(root, "bench/GrantPeer/server.mjs");
var work = Directory.CreateTempSubdirectory("oauthbroker-bench-").FullName;
var results = new List<FlowResult>();
var notes = new Dictionary<string, object>();

// --tls: the fake GitHub over HTTPS (HTTP/1.1 and HTTP/2, as GitHub), its certificate trusted by every server.
await using var gitHub = await FakeGitHub.StartAsync(args.Contains("--tls") ? Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1AndHttp2 : null);
if (gitHub.Certificate is { } gitHubCertificate)
{
    var trusted = Path.Combine(work, "fake-github.pem");
    File.WriteAllText(trusted, gitHubCertificate.ExportCertificatePem());
    ServerProcess.Everywhere["SSL_CERT_FILE"] = trusted;
    ServerProcess.Everywhere["NODE_EXTRA_CA_CERTS"] = trusted;
    FlowDriver.TrustedCertificateHash = gitHubCertificate.GetCertHashString();
}

using var rsa = RSA.Create(2048);
var instanceKey = new Jwk(rsa, isPrivate: false).ToDictionary();
instanceKey["alg"] = "RSA-OAEP-256";

try
{
    // --profile SECONDS [grant|reference|reference-crypto|large|postgres] [--concurrency N]: one target at c=16 (or N)
    // for that long, its pid printed first, for perf or dotnet-trace.
    var profileAt = Array.IndexOf(args, "--profile");
    if (profileAt >= 0)
    {
        var seconds = int.Parse(args[profileAt + 1], CultureInfo.InvariantCulture);
        var concurrencyAt = Array.IndexOf(args, "--concurrency");
        var concurrency = concurrencyAt >= 0 ? int.Parse(args[concurrencyAt + 1], CultureInfo.InvariantCulture) : 16;
        // "large": the growth scenario, 10,000 instances and 1,000,000 users.
        var growth = args.Contains("large");
        var folder = ServerFolder("profile", growth ? 10_000 : 10);
        if (growth)
        {
            await SeedGrowthCaseAsync(folder, 1_000_000);
        }

        var port = ServerProcess.FreePort();
        // "postgres": the broker on a throw-away PostgreSQL cluster (its folder, with server.log, under /tmp/oauthbroker-pg-*).
        var database = args.Contains("postgres") ? await (await PostgresCluster.StartNewAsync()).CreateDatabaseAsync() : null;
        using var server = args.Contains("grant") ? await StartGrantAsync(folder, port)
            : args.Contains("reference") ? await StartReferenceAsync(folder, port)
            : args.Contains("reference-crypto") ? await StartReferenceAsync(folder, port, withTokenCrypto: true)
            : await StartBrokerAsync(folder, port, database: database);
        await SettleAsync(server);
        Console.WriteLine($"pid {server.ProcessId}");
        await Task.Delay(2000);
        Report(await RunAsync("profile", $"c={concurrency}", server, concurrency, TimeSpan.Zero, TimeSpan.FromSeconds(seconds)));
        return;
    }

    // --postgres: only the broker on SQLite beside the broker on PostgreSQL, at c=16 and c=64 in alternating rounds,
    // for working on the PostgreSQL backend without the whole run.
    if (args.Contains("--postgres"))
    {
        using var onSqlite = await StartBrokerAsync(ServerFolder("small", 10), ServerProcess.FreePort());
        var cluster = await PostgresCluster.StartNewAsync();
        using var onPostgres = await StartBrokerAsync(ServerFolder("small-postgres", 10), ServerProcess.FreePort(), database: await cluster.CreateDatabaseAsync());
        onPostgres.DatabaseCpuSeconds = () => ServerProcess.PostgresCpuSeconds(cluster.PostmasterPid);
        List<(string Target, string Scenario, ServerProcess Server)> pair = [("broker", "10 instances", onSqlite), ("broker-pg", "10 instances, PostgreSQL", onPostgres)];
        foreach (var target in pair)
        {
            await SettleAsync(target.Server);
        }

        foreach (var concurrency in new[] { 16, 64 })
        {
            var windows = new List<FlowResult>();
            for (var round = 0; round < roundCount; round++)
            {
                foreach (var target in round % 2 == 0 ? pair : [pair[1], pair[0]])
                {
                    windows.Add(Report(await RunAsync(target.Target, target.Scenario, target.Server, concurrency, warmUp, measure)));
                }
            }

            results.AddRange(pair.Select(target => FlowResult.Combine(windows.Where(w => w.Target == target.Target).ToList())));
        }

        PrintPostgresComparison(results, notes);
        return;
    }

    // The five servers run side by side, idle but for the one being measured, so that each concurrency is measured
    // in alternating rounds: the ratios then compare windows minutes apart, not a quarter of an hour apart.
    var small = ServerFolder("small", 10);
    var large = ServerFolder("large", 10_000);
    var seededUsers = quick ? 100_000 : 1_000_000;
    await SeedGrowthCaseAsync(large, seededUsers);
    notes["seededUsers"] = seededUsers;
    var smallJit = ServerFolder("small-jit", 10);
    notes["broker"] = Path.GetRelativePath(root, brokerDll);
    using var reference = await StartReferenceAsync(work, ServerProcess.FreePort());
    using var referenceCrypto = await StartReferenceAsync(work, ServerProcess.FreePort(), withTokenCrypto: true);
    using var smallBroker = await StartBrokerAsync(small, ServerProcess.FreePort());
    using var largeBroker = await StartBrokerAsync(large, ServerProcess.FreePort());
    using var jitBroker = await StartBrokerAsync(smallJit, ServerProcess.FreePort(), jitDll);
    using var grant = await StartGrantAsync(work, ServerProcess.FreePort());
    List<(string Target, string Scenario, ServerProcess Server)> targets =
    [
        ("grant", "Grant 5 on express (no database, no token crypto)", grant),
        ("reference", "floor", reference),
        ("reference", "floor + token crypto", referenceCrypto),
        ("broker", "10 instances", smallBroker),
        ("broker", "10,000 instances, 1M users", largeBroker),
        ("broker-jit", "10 instances, JIT build", jitBroker),
    ];

    // The same broker on PostgreSQL: a throw-away cluster from Debian's packages on 127.0.0.1, as the tests start it
    // (fsync off there, as here), whose own CPU is measured beside the broker's.
    ServerProcess? postgresBroker = null;
    try
    {
        var cluster = await PostgresCluster.StartNewAsync();
        postgresBroker = await StartBrokerAsync(ServerFolder("small-postgres", 10), ServerProcess.FreePort(), database: await cluster.CreateDatabaseAsync());
        postgresBroker.DatabaseCpuSeconds = () => ServerProcess.PostgresCpuSeconds(cluster.PostmasterPid);
        targets.Add(("broker-pg", "10 instances, PostgreSQL", postgresBroker));
    }
    catch (InvalidOperationException exception)
    {
        notes["postgres"] = "not measured: " + exception.Message;
        Console.WriteLine(notes["postgres"]);
    }

    foreach (var target in targets)
    {
        await SettleAsync(target.Server);
    }

    // 1-3. The floor (the same hops with nothing else), the floor with the token's crypto, the broker small, the
    // broker with 10,000 instances and 1,000,000 users, and the JIT build, at each concurrency, in alternating rounds.
    var rounds = new List<FlowResult>();
    foreach (var concurrency in new[] { 1, 16, 64 })
    {
        var windows = new List<FlowResult>();
        for (var round = 0; round < roundCount; round++)
        {
            // Each round starts one target later, so that no target always follows the same one (a server that has
            // just stopped under load still checkpoints, collects and winds its threads down in the next window).
            foreach (var target in targets.Skip(round % targets.Count).Concat(targets.Take(round % targets.Count)))
            {
                windows.Add(Report(await RunAsync(target.Target, target.Scenario, target.Server, concurrency, warmUp, measure)));
            }
        }

        rounds.AddRange(windows);
        results.AddRange(targets.Select(target => FlowResult.Combine(windows.Where(w => w.Target == target.Target && w.Scenario == target.Scenario).ToList())));
    }

    notes["rounds"] = rounds;
    reference.Dispose();
    referenceCrypto.Dispose();
    largeBroker.Dispose();
    jitBroker.Dispose();
    grant.Dispose();
    postgresBroker?.Dispose();

    // 4. Memory over many flows: resident set after each fifth, to show a plateau rather than a drift.
    var rss = new List<double> { Math.Round(smallBroker.ResidentMegabytes, 1) };
    for (var round = 0; round < 5; round++)
    {
        var soak = await RunAsync("broker", "soak", smallBroker, 64, TimeSpan.Zero, TimeSpan.FromMinutes(10), soakFlows / 5);
        if (soak.Errors.Count > 0)
        {
            notes["soakErrors"] = soak.Errors;
        }

        rss.Add(Math.Round(smallBroker.ResidentMegabytes, 1));
    }

    notes["rssMbAfterEachFifthOfSoak"] = rss;
    notes["soakFlows"] = soakFlows;
    Console.WriteLine($"RSS (MB) at start and after each {soakFlows / 5} flows: {string.Join(", ", rss)}");
    smallBroker.Dispose();

    // 5. Time to ready on a warm disk: the same data folder, started again.
    var readyMs = new List<double>();
    for (var i = 0; i < 3; i++)
    {
        using var again = await StartBrokerAsync(small, ServerProcess.FreePort());
        readyMs.Add(Math.Round(again.TimeToReady.TotalMilliseconds));
    }

    notes["timeToReadyMs"] = readyMs;
    Console.WriteLine($"Process start to /readyz 200 (ms): {string.Join(", ", readyMs)}");
}
finally
{
    try
    {
        Directory.Delete(work, recursive: true);
    }
    catch (IOException)
    {
    }
}

PrintSummary(results, notes);
var output = Path.Combine(root, "bench", "results");
Directory.CreateDirectory(output);
// NaN stands for "not measured" (no flows, no database of its own).
var json = JsonSerializer.Serialize(new { machine = $"{Environment.ProcessorCount} cores", date = DateTimeOffset.UtcNow, quick, results, notes },
    new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });
var resultFile = Path.Combine(output, (quick ? "flow-quick" : "flow") + (gitHub.Certificate is null ? "" : "-tls") + ".json");
File.WriteAllText(resultFile, json);
Console.WriteLine($"Wrote {resultFile}");

// A server's working folder, with an allowlist of that many instances.
string ServerFolder(string name, int instances)
{
    var folder = Path.Combine(work, name);
    Directory.CreateDirectory(folder);
    File.WriteAllText(Path.Combine(folder, "allowed-redirects.json"), Allowlist(instances, instanceKey));
    return folder;
}

// The growth case's users: the broker's first start creates the schema, the users are added while it is stopped.
async Task SeedGrowthCaseAsync(string folder, int users)
{
    using (await StartBrokerAsync(folder, ServerProcess.FreePort()))
    {
    }

    var seeding = Stopwatch.StartNew();
    await SeedUsersAsync(Path.Combine(folder, "data", "broker.db"), users);
    Console.WriteLine($"Seeded users in {seeding.Elapsed.TotalSeconds:0.0} s");
}

// withTokenCrypto: the floor plus the token's encryption to the instance and its signature (see ReferenceBroker/TokenCrypto.cs).
Task<ServerProcess> StartReferenceAsync(string folder, int port, bool withTokenCrypto = false)
{
    var environment = new Dictionary<string, string?>
    {
        ["GitHub__BaseUrl"] = gitHub.BaseUrl, ["GitHub__ApiUrl"] = gitHub.ApiUrl, ["GitHub__ClientId"] = FakeGitHub.ClientId,
        ["GitHub__ClientSecret"] = gitHub.ClientSecret, ["PublicUrl"] = $"http://127.0.0.1:{port}",
    };
    if (withTokenCrypto)
    {
        environment["Reference__InstanceKey"] = JsonSerializer.Serialize(instanceKey);
    }

    return ServerProcess.StartAsync(referenceDll, folder, port, environment);
}

// The peer (bench/GrantPeer, npm ci there first): Grant 5 with express-session, the same hops, state and PKCE on.
Task<ServerProcess> StartGrantAsync(string folder, int port) => ServerProcess.StartAsync(grantPeer, folder, port, new Dictionary<string, string?>
{
    ["GITHUB_BASE_URL"] = gitHub.BaseUrl, ["GITHUB_API_URL"] = gitHub.ApiUrl, ["GITHUB_CLIENT_ID"] = FakeGitHub.ClientId, ["GITHUB_CLIENT_SECRET"] = gitHub.ClientSecret,
    ["CALLBACK"] = FlowDriver.Callback, ["SESSION_SECRET"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), ["NODE_ENV"] = "production",
});

Task<ServerProcess> StartBrokerAsync(string folder, int port, string? executable = null, string? database = null)
{
    var settings = gitHub.BrokerSettings();
    // The ceiling on logins started per ten minutes (100,000 by default) protects a real broker from floods; a
    // benchmark starts that many in about a minute, and would measure its 503s instead of the login path.
    settings["RateLimits:PendingLogins"] = "0";
    if (database is not null)
    {
        settings["Broker:Database"] = "postgres";
        settings["ConnectionStrings:Broker"] = database;
    }

    settings["Broker:PublicUrl"] = $"http://127.0.0.1:{port}";
    settings["Broker:AllowlistPath"] = Path.Combine(folder, "allowed-redirects.json");
    settings["Broker:DataPath"] = Path.Combine(folder, "data");
    var environment = FakeGitHub.AsEnvironment(settings);
    environment["ASPNETCORE_ENVIRONMENT"] = "Production";
    return ServerProcess.StartAsync(executable ?? brokerDll, folder, port, environment);
}

Task SettleAsync(ServerProcess server) => RunAsync("settle", "unmeasured", server, 16, settle, TimeSpan.Zero);

// Every run through here: the fake GitHub forgets what it issued, so its memory does not grow over the whole benchmark.
async Task<FlowResult> RunAsync(string target, string scenario, ServerProcess server, int concurrency, TimeSpan warmUpFor, TimeSpan measureFor, int maxFlows = int.MaxValue)
{
    try
    {
        return await FlowDriver.RunAsync(target, scenario, server, concurrency, warmUpFor, measureFor, maxFlows);
    }
    finally
    {
        gitHub.ForgetIssued();
    }
}

static FlowResult Report(FlowResult result)
{
    var database = double.IsNaN(result.DatabaseCpuMsPerFlow) ? "" : $"  postgres cpu {result.DatabaseCpuMsPerFlow,6:0.000} ms/flow";
    Console.WriteLine($"{result.Target,-10} {result.Scenario,-27} c={result.Concurrency,-3} {result.FlowsPerSecond,8:0.0} flows/s  p50 {result.P50Ms,6:0.00} p90 {result.P90Ms,6:0.00} p99 {result.P99Ms,6:0.00} ms  cpu {result.CpuMsPerFlow,6:0.000} ms/flow  peak {result.PeakRssMb,6:0.0} MB  errors {result.Errors.Values.Sum()}{database}");
    return result;
}

static void PrintSummary(List<FlowResult> results, Dictionary<string, object> notes)
{
    Console.WriteLine();
    Console.WriteLine("| target | scenario | concurrency | flows/s | p50 ms | p90 ms | p99 ms | server CPU ms/flow | PostgreSQL CPU ms/flow | peak RSS MB | errors |");
    Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    foreach (var r in results)
    {
        var errors = r.Errors.Count == 0 ? "0" : string.Join(", ", r.Errors.Select(e => $"{e.Key}: {e.Value}"));
        var database = double.IsNaN(r.DatabaseCpuMsPerFlow) ? "" : r.DatabaseCpuMsPerFlow.ToString("0.000", CultureInfo.InvariantCulture);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Target} | {r.Scenario} | {r.Concurrency} | {r.FlowsPerSecond:0.0} | {r.P50Ms:0.00} | {r.P90Ms:0.00} | {r.P99Ms:0.00} | {r.CpuMsPerFlow:0.000} | {database} | {r.PeakRssMb:0.0} | {errors} |"));
    }

    double Cpu(string target, string scenario) => results.Single(r => r.Target == target && r.Scenario == scenario && r.Concurrency == 16).CpuMsPerFlow;
    double Throughput(string target, string scenario, int concurrency) => results.Single(r => r.Target == target && r.Scenario == scenario && r.Concurrency == concurrency).FlowsPerSecond;
    double P99(string target, string scenario) => results.Single(r => r.Target == target && r.Scenario == scenario && r.Concurrency == 16).P99Ms;
    var ratio = Cpu("broker", "10 instances") / Cpu("reference", "floor");
    var growthCpu = Cpu("broker", "10,000 instances, 1M users") / Cpu("broker", "10 instances");
    var growthP99 = P99("broker", "10,000 instances, 1M users") / P99("broker", "10 instances");
    var jitRatio = Cpu("broker-jit", "10 instances, JIT build") / Cpu("reference", "floor");
    var cryptoFloorRatio = Cpu("reference", "floor + token crypto") / Cpu("reference", "floor");
    var ratioToCryptoFloor = Cpu("broker", "10 instances") / Cpu("reference", "floor + token crypto");
    notes["cpuPerFlowRatioToReferenceAtC16"] = Math.Round(ratio, 2);
    notes["jitCpuPerFlowRatioToReferenceAtC16"] = Math.Round(jitRatio, 2);
    notes["cryptoFloorCpuPerFlowRatioToReferenceAtC16"] = Math.Round(cryptoFloorRatio, 2);
    notes["cpuPerFlowRatioToCryptoFloorAtC16"] = Math.Round(ratioToCryptoFloor, 2);
    notes["growthCpuPerFlowRatioAtC16"] = Math.Round(growthCpu, 2);
    notes["growthP99RatioAtC16"] = Math.Round(growthP99, 2);
    var grantThroughput16 = Throughput("broker", "10 instances", 16) / Throughput("grant", "Grant 5 on express (no database, no token crypto)", 16);
    var grantThroughput64 = Throughput("broker", "10 instances", 64) / Throughput("grant", "Grant 5 on express (no database, no token crypto)", 64);
    notes["throughputRatioToGrantAtC16"] = Math.Round(grantThroughput16, 2);
    notes["throughputRatioToGrantAtC64"] = Math.Round(grantThroughput64, 2);
    Console.WriteLine();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Broker CPU per flow / reference at c=16: {ratio:0.00}"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"JIT build of the broker, CPU per flow / reference at c=16: {jitRatio:0.00}"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Reference with the token's crypto / reference at c=16: {cryptoFloorRatio:0.00}; broker / that floor: {ratioToCryptoFloor:0.00} (target <= 1.5)"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Broker p99 at c=16: {P99("broker", "10 instances"):0.00} ms (target < 25)"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Broker throughput / Grant's: x{grantThroughput16:0.00} at c=16, x{grantThroughput64:0.00} at c=64 (target >= 2)"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Growth (10,000 instances, 1M users vs small) at c=16: CPU/flow x{growthCpu:0.00}, p99 x{growthP99:0.00} (target within 1.10)"));
    PrintPostgresComparison(results, notes);
}

static void PrintPostgresComparison(List<FlowResult> results, Dictionary<string, object> notes)
{
    if (results.Any(r => r.Target == "broker-pg"))
    {
        foreach (var concurrency in new[] { 16, 64 })
        {
            var onPostgres = results.Single(r => r.Target == "broker-pg" && r.Concurrency == concurrency);
            var onSqlite = results.Single(r => r.Target == "broker" && r.Scenario == "10 instances" && r.Concurrency == concurrency);
            var postgresRatio = onPostgres.CpuMsPerFlow / onSqlite.CpuMsPerFlow;
            notes[$"postgresBrokerCpuPerFlowRatioToSqliteAtC{concurrency}"] = Math.Round(postgresRatio, 2);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Broker on PostgreSQL at c={concurrency}: broker CPU/flow x{postgresRatio:0.00} of SQLite's (target <= 1.3), PostgreSQL's own {onPostgres.DatabaseCpuMsPerFlow:0.000} ms/flow, p99 {onPostgres.P99Ms:0.00} ms (target < 40 at c=16)"));
        }
    }
}

static string Allowlist(int count, IDictionary<string, object> key)
{
    var instances = new List<object> { new Dictionary<string, object> { ["id"] = "bench-instance", ["redirectUris"] = new[] { FlowDriver.Callback }, ["encryptionKey"] = key } };
    for (var i = 1; i < count; i++)
    {
        instances.Add(new Dictionary<string, object> { ["id"] = $"instance-{i}", ["redirectUris"] = new[] { $"https://i{i}.bench.example/auth/callback" }, ["deliverAccessToken"] = false });
    }

    return JsonSerializer.Serialize(new { instances });
}

static async Task SeedUsersAsync(string database, int count)
{
    await using var connection = new SqliteConnection($"Data Source={database}");
    await connection.OpenAsync();
    await using var transaction = await connection.BeginTransactionAsync();
    await using var command = connection.CreateCommand();
    command.CommandText = "INSERT INTO users (github_id, login, name, email, avatar_url, first_login_at, last_login_at) VALUES ($id, $login, $name, NULL, NULL, 0, 0)";
    var id = command.Parameters.Add("$id", SqliteType.Integer);
    var login = command.Parameters.Add("$login", SqliteType.Text);
    var name = command.Parameters.Add("$name", SqliteType.Text);
    for (var i = 0; i < count; i++)
    {
        id.Value = 10_000_000_000L + i;
        login.Value = $"seeded-{i}";
        name.Value = $"Seeded User {i}";
        await command.ExecuteNonQueryAsync();
    }

    await transaction.CommitAsync();
}

static string FindRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "OAuthBroker.sln")))
        {
            return dir.FullName;
        }
    }

    throw new InvalidOperationException("Run from inside the repository.");
}
