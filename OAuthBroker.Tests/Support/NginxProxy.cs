using System.Diagnostics;
using System.Net.Sockets;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// nginx from Debian as the round-robin reverse proxy in front of broker replicas, on 127.0.0.1 only, with the site
/// compose.yaml deploys (deploy/nginx.conf) and temporary folders of its own; killed with its workers when disposed.
/// </summary>
public sealed class NginxProxy : IAsyncDisposable
{
    public const string Executable = "/usr/sbin/nginx";

    private readonly Process process;
    private readonly TempDirectory folder;

    private NginxProxy(Process process, TempDirectory folder, string url)
    {
        this.process = process;
        this.folder = folder;
        Url = url;
    }

    public string Url { get; }

    public static async Task<NginxProxy> StartAsync(IEnumerable<string> upstreams, int port)
    {
        if (!File.Exists(Executable))
        {
            throw new InvalidOperationException("nginx is not installed: `bash scripts/test.sh` installs Debian's nginx package.");
        }

        var folder = new TempDirectory();
        foreach (var temp in new[] { "body", "proxy", "fastcgi", "uwsgi", "scgi" })
        {
            Directory.CreateDirectory(Path.Combine(folder.Path, temp));
        }

        File.WriteAllText(Path.Combine(folder.Path, "brokers.conf"), DeployedSite(upstreams, port));
        // Workers run as this user (root in CI); buffered bodies go to the folder's own temp paths.
        var user = Environment.IsPrivilegedProcess ? "user root;" : "";
        File.WriteAllText(Path.Combine(folder.Path, "nginx.conf"), $$"""
            {{user}}
            daemon off;
            worker_processes 1;
            pid {{folder.Path}}/nginx.pid;
            error_log {{folder.Path}}/error.log warn;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path {{folder.Path}}/body;
                proxy_temp_path {{folder.Path}}/proxy;
                fastcgi_temp_path {{folder.Path}}/fastcgi;
                uwsgi_temp_path {{folder.Path}}/uwsgi;
                scgi_temp_path {{folder.Path}}/scgi;
                include {{folder.Path}}/brokers.conf;
            }
            """);
        var start = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "-p", folder.Path, "-c", Path.Combine(folder.Path, "nginx.conf") })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        var proxy = new NginxProxy(process, folder, $"http://127.0.0.1:{port}");
        var listening = await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(10), async () =>
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port);
                return true;
            }
            catch (SocketException)
            {
                return process.HasExited ? throw new InvalidOperationException($"nginx exited: {await process.StandardError.ReadToEndAsync()}") : false;
            }
        });
        if (!listening)
        {
            await proxy.DisposeAsync();
            throw new InvalidOperationException("nginx did not start listening within 10 s.");
        }

        return proxy;
    }

    /// <summary>
    /// compose.yaml's proxy site (deploy/nginx.conf), with the test's replicas for its two upstreams and 127.0.0.1 for
    /// its port: the tests prove the configuration users deploy.
    /// </summary>
    public static string DeployedSite(IEnumerable<string> upstreams, int port)
    {
        var site = File.ReadAllText(Path.Combine(NodeProcess.RepositoryRoot, "deploy", "nginx.conf"));
        var servers = string.Join("\n", upstreams.Select(upstream => $"    server {new Uri(upstream).Authority};"));
        return Swap(Swap(site, "    server broker-a:8080;\n    server broker-b:8080;", servers), "    listen 8080;", $"    listen 127.0.0.1:{port};");

        static string Swap(string text, string expected, string replacement) => text.Contains(expected, StringComparison.Ordinal)
            ? text.Replace(expected, replacement, StringComparison.Ordinal)
            : throw new InvalidOperationException($"deploy/nginx.conf no longer has '{expected.Trim()}': update the test's swap with it.");
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            // "stop" lets the master end its workers and reap them; SIGKILL to the tree would leave zombie workers.
            var stop = new ProcessStartInfo(Executable) { UseShellExecute = false, RedirectStandardError = true };
            foreach (var argument in new[] { "-p", folder.Path, "-c", Path.Combine(folder.Path, "nginx.conf"), "-s", "stop" })
            {
                stop.ArgumentList.Add(argument);
            }

            using (var signal = Process.Start(stop)!)
            {
                await signal.WaitForExitAsync();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }

        process.Dispose();
        folder.Dispose();
    }
}
