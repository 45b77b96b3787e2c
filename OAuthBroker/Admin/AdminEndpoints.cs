using Microsoft.Extensions.Options;
using OAuthBroker.Broker;
using OAuthBroker.Storage;

namespace OAuthBroker.Admin;

public static class AdminEndpoints
{
    public static IServiceCollection AddAdmin(this IServiceCollection services)
    {
        services.AddOptions<AdminOptions>().BindConfiguration(AdminOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AdminOptions>, AdminOptionsValidator>();
        services.AddAdminAuthentication();
        services.AddStore<IAdminSessionRepository, SqliteAdminSessionRepository, PostgresAdminSessionRepository>();
        services.AddSingleton<AdminSessionStore>();
        services.AddSingleton<Storage.IPurgeable>(provider => provider.GetRequiredService<AdminSessionStore>());
        return services;
    }

    /// <summary>Everything under /admin requires an admin; with neither GitHub admins nor an API token configured, /admin does not exist.</summary>
    public static IEndpointRouteBuilder MapAdmin(this IEndpointRouteBuilder endpoints)
    {
        if (!endpoints.ServiceProvider.GetRequiredService<IOptions<AdminOptions>>().Value.Enabled)
        {
            return endpoints;
        }

        endpoints.MapGet("/admin/login", AdminSignIn.StartAsync).WithTags("Admin").AllowAnonymous();
        endpoints.MapGet("/admin/signed-out", (IOptions<BrokerOptions> broker) => Web.HtmlPage.Render(
                "Signed out", $"<p>You are signed out of the broker's admin page.</p><p><a id=\"sign-in\" href=\"{Web.HtmlPage.Encode(broker.Value.BrowserPath("/admin/login"))}\">Sign in again</a></p>"))
            .WithTags("Admin").AllowAnonymous();
        var admin = endpoints.MapGroup("/admin")
            .RequireAuthorization(AdminAuthentication.Policy)
            .AddEndpointFilter(AdminAuthentication.RequireCsrfTokenForSessionWrites)
            .WithTags("Admin");
        AdminApi.Map(admin);
        AdminPage.Map(admin);
        AdminUsers.Map(admin);
        AdminWebhooks.Map(admin);
        return endpoints;
    }
}
