using System.Net;

namespace OAuthBroker.Tests.Support;

/// <summary>
/// A login over real HTTP against a broker process (or the proxy in front of replicas), without a browser: the start
/// with its binding cookie, the approval at the fake GitHub, and the return to the callback, each step on any URL.
/// </summary>
public static class HttpLogin
{
    /// <summary>Starts a login at <paramref name="baseUrl"/> for the Trackeep instance and approves it at GitHub; returns the callback URL and the binding cookie.</summary>
    public static async Task<(string Callback, string Cookie)> StartAndApproveAsync(string baseUrl, string? state = "instance-state-123")
    {
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
        using var start = await http.GetAsync(baseUrl + Browser.StartUrl(StandardInstances.TrackeepCallback, state));
        start.StatusCode.Should().Be(HttpStatusCode.Redirect, await start.Content.ReadAsStringAsync());
        var cookie = start.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
        return (await Browser.ApproveAtGitHubAsync(start.Headers.Location!), cookie);
    }

    /// <summary>Returns from GitHub to <paramref name="callback"/>'s path and query on <paramref name="baseUrl"/>, with the binding cookie.</summary>
    public static async Task<HttpResponseMessage> ReturnAsync(string baseUrl, string callback, string cookie)
    {
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
        using var request = new HttpRequestMessage(HttpMethod.Get, baseUrl + new Uri(callback).PathAndQuery);
        request.Headers.Add("Cookie", cookie);
        return await http.SendAsync(request);
    }
}
