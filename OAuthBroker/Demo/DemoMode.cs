using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;

namespace OAuthBroker.Demo;

/// <summary><c>--demo</c>: the whole flow on one machine with no GitHub app, against a stand-in GitHub and a demo instance.</summary>
public static class DemoMode
{
    public static WebApplicationBuilder AddDemo(this WebApplicationBuilder builder, bool requested)
    {
        if (!requested && !builder.Configuration.GetValue<bool>("Demo:Enabled"))
        {
            return builder;
        }

        if (builder.Environment.IsProduction())
        {
            throw new StartupException(
                "Demo mode signs in a made-up user through a stand-in GitHub and refuses to run in the Production environment. "
                + "Run it with ASPNETCORE_ENVIRONMENT=Development (dotnet run does this), or start without --demo.");
        }

        RequireLoopback(builder.Configuration);
        UseOwnFolder(builder);

        builder.Services.AddSingleton<DemoGitHub>();
        builder.Services.AddSingleton<IPostConfigureOptions<GitHubOptions>, DemoGitHubOptions>();
        builder.Services.AddSingleton<DemoInstance>();
        builder.Services.AddSingleton<IAllowlistSupplement>(provider => provider.GetRequiredService<DemoInstance>());
        builder.Services.AddHttpClient(nameof(DemoInstance));
        return builder;
    }

    /// <summary>Anyone who reaches a demo broker can sign in as its made-up user: it listens on this machine only.</summary>
    private static void RequireLoopback(ConfigurationManager configuration)
    {
        var settings = (configuration["Urls"] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(url => (Setting: "Urls", Value: url))
            .Append((Setting: "Broker:PublicUrl", Value: configuration["Broker:PublicUrl"] ?? ""))
            .Where(setting => setting.Value.Length > 0);
        var exposed = settings.Where(setting => !Uri.TryCreate(setting.Value, UriKind.Absolute, out var uri) || !uri.IsLoopback).ToList();
        if (exposed.Count > 0)
        {
            throw new StartupException(
                $"Demo mode runs on loopback only, and {string.Join(", ", exposed.Select(setting => $"{setting.Setting} {setting.Value}"))} is not: "
                + $"listen on http://127.0.0.1:PORT (Urls, default {BuiltInDefaults.ListenAddress}) and leave Broker:PublicUrl out (it follows Urls), or start without --demo.");
        }
    }

    /// <summary>
    /// A demo never runs beside real instances: its database, key ring and signing key live in a temporary folder of
    /// its own, deleted when it stops (or by the next demo, when it was killed), and its allowlist holds the demo instance alone, plus the entries of
    /// <c>Demo:AllowlistPath</c> when one is given (to try an instance of your own against the demo).
    /// </summary>
    private static void UseOwnFolder(WebApplicationBuilder builder)
    {
        DemoFolders.SweepStale(Path.GetTempPath());
        var folder = DemoFolders.Create();
        var own = builder.Configuration["Demo:AllowlistPath"] is { Length: > 0 } given ? Path.GetFullPath(given) : null;
        if (own is not null && !File.Exists(own))
        {
            // Creating it would hide a mistyped path behind a demo without the instance that was meant to be tried.
            Directory.Delete(folder, recursive: true);
            throw new StartupException($"Demo:AllowlistPath names {own}, which does not exist. Give the allowlist file of the instance to try against the demo, or leave the setting out.");
        }

        var allowlist = own ?? Path.Combine(folder, "allowed-redirects.json");
        if (own is null)
        {
            File.WriteAllText(allowlist, """{ "instances": [] }""");
        }

        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:DataPath"] = Path.Combine(folder, "data"),
            ["Broker:AllowlistPath"] = allowlist,
            // The demo's key ring lives and dies with its folder: its key-encryption key is kept in memory only.
            ["Broker:KeyEncryptionKey"] = KeyRing.KeyEncryptionKey.NewBase64(),
            ["Broker:KeyEncryptionKeyFile"] = "",
        });
        builder.Services.AddSingleton(new DemoFolder(folder));
    }

    public static IEndpointRouteBuilder MapDemo(this IEndpointRouteBuilder endpoints)
    {
        if (endpoints.ServiceProvider.GetService<DemoGitHub>() is { } gitHub)
        {
            var folder = endpoints.ServiceProvider.GetRequiredService<DemoFolder>();
            endpoints.ServiceProvider.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(folder.Delete);
            gitHub.Map(endpoints);
            endpoints.ServiceProvider.GetRequiredService<DemoInstance>().Map(endpoints);
            endpoints.MapGet("/", () => TypedResults.Redirect(DemoInstance.PathBase)).ExcludeFromDescription();
        }

        return endpoints;
    }
}

/// <summary>The demo's temporary folder: its data and, unless one was given, its allowlist.</summary>
public sealed record DemoFolder(string Path)
{
    public void Delete()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Something still holds a file; the system's temporary folder is cleaned in time anyway.
        }
    }
}
