using System.Diagnostics;
using System.Globalization;

namespace FlowBench;

/// <summary>A server under test in its own process, with its CPU time and resident memory read from /proc.</summary>
internal sealed class ServerProcess : IDisposable
{
    private static readonly double TicksPerSecond = 100; // USER_HZ on Linux
    private readonly Process process;
    private bool disposed;

    private ServerProcess(Process process, string baseUrl, TimeSpan timeToReady)
    {
        this.process = process;
        BaseUrl = baseUrl;
        TimeToReady = timeToReady;
    }

    public string BaseUrl { get; }

    public int ProcessId => process.Id;

    public TimeSpan TimeToReady { get; }

    /// <summary>Set for every server this run starts (with --tls: the fake GitHub's certificate, trusted).</summary>
    public static Dictionary<string, string?> Everywhere { get; } = [];

    public static async Task<ServerProcess> StartAsync(string dll, string workingDirectory, int port, IDictionary<string, string?> environment)
    {
        // A .dll runs on the shared runtime, an .mjs on Node; anything else is taken to be a native (AOT-compiled) executable.
        var runner = dll.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? "dotnet" : dll.EndsWith(".mjs", StringComparison.OrdinalIgnoreCase) ? "node" : null;
        var start = new ProcessStartInfo(runner ?? dll) { WorkingDirectory = workingDirectory, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (runner is not null)
        {
            start.ArgumentList.Add(dll);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        foreach (var (key, value) in Everywhere)
        {
            start.Environment[key] = value;
        }

        start.Environment["Urls"] = $"http://127.0.0.1:{port}";
        start.Environment["PORT"] = port.ToString(CultureInfo.InvariantCulture);
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var clock = Stopwatch.StartNew();
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, line) => { if (line.Data is not null) Console.Error.WriteLine("  [server] " + line.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var baseUrl = $"http://127.0.0.1:{port}";
        using var http = new HttpClient();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                using var response = await http.GetAsync(baseUrl + "/readyz");
                if (response.IsSuccessStatusCode)
                {
                    return new ServerProcess(process, baseUrl, clock.Elapsed);
                }
            }
            catch (HttpRequestException)
            {
            }

            if (process.HasExited)
            {
                throw new InvalidOperationException($"{dll} exited with {process.ExitCode}");
            }

            await Task.Delay(5);
        }

        process.Kill();
        throw new TimeoutException($"{dll} did not become ready");
    }

    /// <summary>User plus system CPU seconds the process has used so far.</summary>
    public double CpuSeconds => Stat(process.Id) is { } stat ? (stat.User + stat.System) / TicksPerSecond : 0;

    /// <summary>The CPU seconds of the database server this one uses (PostgreSQL's processes), when it has one of its own.</summary>
    public Func<double>? DatabaseCpuSeconds { get; set; }

    /// <summary>
    /// A PostgreSQL server's CPU seconds so far: the postmaster's own and those of the backends it reaped (cutime,
    /// cstime), plus those of its children alive now.
    /// </summary>
    public static double PostgresCpuSeconds(int postmaster)
    {
        var total = Stat(postmaster) is { } main ? main.User + main.System + main.ChildUser + main.ChildSystem : 0;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), CultureInfo.InvariantCulture, out var pid) && pid != postmaster
                && Stat(pid) is { } child && child.Parent == postmaster)
            {
                total += child.User + child.System;
            }
        }

        return total / TicksPerSecond;
    }

    // Fields of /proc/PID/stat after the command name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    private static (int Parent, long User, long System, long ChildUser, long ChildSystem)? Stat(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long Field(int index) => long.Parse(fields[index], CultureInfo.InvariantCulture);
            return ((int)Field(1), Field(11), Field(12), Field(13), Field(14));
        }
        catch (IOException)
        {
            return null; // the process has just ended
        }
    }

    public double ResidentMegabytes
    {
        get
        {
            var line = File.ReadLines($"/proc/{process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        }
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }

        process.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
