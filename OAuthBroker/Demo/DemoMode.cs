using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;

namespace OAuthBroker.Demo;

/// <summary><c>--demo</c>: the whole flow on one machine with no GitHub app, against a stand-in GitHub and a demo instance.</summary>
public static class DemoMode
{
    public const string Switch = "--demo";

    /// <summary>Takes the switch out of the arguments (the configuration parser would read it as a key without a value).</summary>
    public static (bool Requested, string[] HostArguments) FromArguments(string[] args) =>
        (args.Contains(Switch, StringComparer.Ordinal), args.Where(arg => arg != Switch).ToArray());

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

        builder.Services.AddSingleton<DemoGitHub>();
        builder.Services.AddSingleton<IPostConfigureOptions<GitHubOptions>, DemoGitHubOptions>();
        builder.Services.AddSingleton<DemoInstance>();
        builder.Services.AddSingleton<IAllowlistSupplement>(provider => provider.GetRequiredService<DemoInstance>());
        builder.Services.AddHttpClient(nameof(DemoInstance));
        return builder;
    }

    public static IEndpointRouteBuilder MapDemo(this IEndpointRouteBuilder endpoints)
    {
        if (endpoints.ServiceProvider.GetService<DemoGitHub>() is { } gitHub)
        {
            gitHub.Map(endpoints);
            endpoints.ServiceProvider.GetRequiredService<DemoInstance>().Map(endpoints);
            endpoints.MapGet("/", () => TypedResults.Redirect(DemoInstance.PathBase)).ExcludeFromDescription();
        }

        return endpoints;
    }
}
