using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

namespace OAuthBroker.Web;

/// <summary>
/// The client's address for the audit trail and rate limits. X-Forwarded-For is believed only from the proxies in
/// Broker:TrustedProxies (and loopback): anyone else could write any address into it.
/// </summary>
public static class ClientAddress
{
    public static string? Of(HttpContext context) => context.Connection.RemoteIpAddress?.ToString();

    public static IServiceCollection AddClientAddress(this IServiceCollection services)
    {
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<BrokerOptions>>((forwarded, broker) =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            foreach (var proxy in broker.Value.TrustedProxies)
            {
                forwarded.KnownProxies.Add(IPAddress.Parse(proxy));
            }
        });
        return services;
    }
}
