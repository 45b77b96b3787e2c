using System.Diagnostics;
using System.Net.Sockets;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// nginx from Debian as the round-robin reverse proxy in front of broker replicas, on 127.0.0.1 only, with a
/// configuration and temporary folders of its own; killed with its workers when disposed.
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

        var servers = string.Join("\n", upstreams.Select(upstream => $"        server {new Uri(upstream).Authority};"));
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
                upstream brokers {
            {{servers}}
                    keepalive 32;
                }
                server {
                    listen 127.0.0.1:{{port}};
                    location / {
                        proxy_pass http://brokers;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header Host $http_host;
                        proxy_set_header X-Forwarded-For $remote_addr;
                        proxy_next_upstream error timeout;
                        # Which replica answered (a list when nginx retried on the next one): for the tests' own checks.
                        add_header X-Upstream $upstream_addr always;
                    }
                }
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
