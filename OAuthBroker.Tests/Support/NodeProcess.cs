using System.Diagnostics;

namespace OAuthBroker.Tests.Support;

/// <summary>Runs one of the repository's Node.js programs and stops it with the test.</summary>
public sealed class NodeProcess : IDisposable
{
    private readonly Process process;

    private NodeProcess(Process process, string url)
    {
        this.process = process;
        Url = url;
    }

    public string Url { get; }

    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "OAuthBroker.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("OAuthBroker.sln not found above the test output folder.");
        }
    }

    /// <summary>Runs <paramref name="script"/> to its end; returns its exit code, output and errors.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string folder, string script, IDictionary<string, string> environment, TimeSpan timeout)
    {
        var workingDirectory = Path.Combine(RepositoryRoot, folder);
        if (!Directory.Exists(Path.Combine(workingDirectory, "node_modules")))
        {
            throw new InvalidOperationException($"Run 'npm ci --prefix {folder}' first (the test command in the README does).");
        }

        var start = new ProcessStartInfo("node", script) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"node {script} did not finish within {timeout}: {await error}");
        }

        return (process.ExitCode, await output, await error);
    }

    /// <summary>Starts <paramref name="script"/> and waits for it to print "listening on URL".</summary>
    public static async Task<NodeProcess> StartAsync(string folder, string script, IDictionary<string, string> environment)
    {
        var workingDirectory = Path.Combine(RepositoryRoot, folder);
        if (!Directory.Exists(Path.Combine(workingDirectory, "node_modules")))
        {
            throw new InvalidOperationException($"Run 'npm ci --prefix {folder}' first (the test command in the README does).");
        }

        var start = new ProcessStartInfo("node", script)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
        if (line is null || !line.StartsWith("listening on ", StringComparison.Ordinal))
        {
            var error = await process.StandardError.ReadToEndAsync(timeout.Token);
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"node {script} did not start: {line} {error}");
        }

        return new NodeProcess(process, line["listening on ".Length..]);
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }

        process.Dispose();
    }
}
