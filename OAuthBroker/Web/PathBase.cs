using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

namespace OAuthBroker.Web;

public static class PathBase
{
    /// <summary>
    /// Serves the broker under the path of Broker:PublicUrl (https://example.com/oauth): requests that carry the prefix
    /// are routed without it, so a proxy may pass it on or strip it. Every URL the broker hands out (callback, metadata,
    /// links, cookie paths) is built from PublicUrl, and so carries the prefix either way.
    /// </summary>
    public static IApplicationBuilder UseBrokerPathBase(this IApplicationBuilder app)
    {
        var pathBase = app.ApplicationServices.GetRequiredService<IOptions<BrokerOptions>>().Value.PathBase;
        if (pathBase.Length > 0)
        {
            app.UsePathBase(pathBase);
        }

        // Routing after the prefix is taken off: WebApplication would otherwise route first, on the full path.
        return app.UseRouting();
    }

    /// <summary>A path of the broker as the browser sees it, under the prefix of Broker:PublicUrl if it has one.</summary>
    public static string BrowserPath(this HttpContext context, string path) =>
        context.RequestServices.GetRequiredService<IOptions<BrokerOptions>>().Value.BrowserPath(path);
}
