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

    /// <summary>
    /// Whom a rate limit counts: an IPv4 address, or the /64 network of an IPv6 one. One IPv6 subscriber is usually
    /// handed a whole /64 (RFC 6177), so counting single addresses would give each of them billions of budgets.
    /// </summary>
    public static string RateLimitKey(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        var network = address.GetAddressBytes();
        Array.Clear(network, 8, 8);
        return new IPAddress(network) + "/64";
    }

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
