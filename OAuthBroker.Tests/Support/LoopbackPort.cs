using System.Net;
using System.Net.Sockets;

namespace OAuthBroker.Tests.Support;

public static class LoopbackPort
{
    /// <summary>A loopback port that was free a moment ago (for servers whose URL must be known before they start).</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
