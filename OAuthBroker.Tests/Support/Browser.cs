using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;

namespace OAuthBroker.Tests.Support;

/// <summary>What the instance receives at the end of a login: the redirect and its query parameters.</summary>
public sealed record LoginOutcome(HttpResponseMessage Response, Uri? Location, IReadOnlyDictionary<string, string> Query)
{
    public string Token => Query["token"];
}

/// <summary>
/// One browser: its own cookie jar for the broker, following redirects by hand so each hop can be inspected.
/// GitHub's authorize page is "visited" with a plain client, as the user's approval.
/// </summary>
public sealed class Browser : IDisposable
{
    private static readonly HttpClient GitHubPages = new(new SocketsHttpHandler { AllowAutoRedirect = false });

    public Browser(WebApplicationFactory<Program> factory, string baseAddress = "http://localhost") =>
        Client = factory.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true, BaseAddress = new Uri(baseAddress) });

    public HttpClient Client { get; }

    /// <summary>The browser-binding cookie ("name=value") the last login start set.</summary>
    public string? LastBindingCookie { get; private set; }

    public static string StartUrl(string redirectUri, string? state = "instance-state-123", string? scope = null)
    {
        var parameters = new Dictionary<string, string?> { ["redirect_uri"] = redirectUri };
        if (state is not null)
        {
            parameters["state"] = state;
        }

        if (scope is not null)
        {
            parameters["scope"] = scope;
        }

        return QueryHelpers.AddQueryString("/auth/github", parameters);
    }

    public Task<HttpResponseMessage> StartAsync(string redirectUri, string? state = "instance-state-123", string? scope = null) =>
        Client.GetAsync(StartUrl(redirectUri, state, scope));

    /// <summary>Starts a login and lets the fake GitHub approve it; returns the URL GitHub sends the browser back to.</summary>
    public async Task<string> StartAndApproveAsync(string redirectUri, string? state = "instance-state-123", string? scope = null)
    {
        using var start = await StartAsync(redirectUri, state, scope);
        start.StatusCode.Should().Be(HttpStatusCode.Redirect, await start.Content.ReadAsStringAsync());
        LastBindingCookie = start.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
        return await ApproveAtGitHubAsync(start.Headers.Location!);
    }

    public static async Task<string> ApproveAtGitHubAsync(Uri authorizeUrl)
    {
        using var approval = await GitHubPages.GetAsync(authorizeUrl);
        approval.StatusCode.Should().Be(HttpStatusCode.Redirect);
        return approval.Headers.Location!.ToString();
    }

    /// <summary>Follows GitHub's redirect back to the broker's callback with this browser's cookies.</summary>
    public async Task<LoginOutcome> ReturnFromGitHubAsync(string callbackUrl)
    {
        var callback = new Uri(callbackUrl);
        var response = await Client.GetAsync(callback.PathAndQuery);
        var location = response.Headers.Location;
        var query = location is null || !location.IsAbsoluteUri
            ? new Dictionary<string, string>()
            : QueryHelpers.ParseQuery(location.Query).ToDictionary(pair => pair.Key, pair => pair.Value.ToString());
        return new LoginOutcome(response, location, query);
    }

    public async Task<LoginOutcome> LoginAsync(string redirectUri, string? state = "instance-state-123", string? scope = null) =>
        await ReturnFromGitHubAsync(await StartAndApproveAsync(redirectUri, state, scope));

    public void Dispose() => Client.Dispose();
}
