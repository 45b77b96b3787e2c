using System.Net;
using System.Net.Security;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.GitHub;

/// <summary>
/// The backchannel as it meets the real GitHub: over TLS, where github.com and api.github.com negotiate HTTP/2. The
/// fake here speaks only HTTP/2 over TLS, and the broker (as a process, trusting the fake's certificate through
/// SSL_CERT_FILE as it would a corporate CA) must complete concurrent logins over it on shared connections.
/// </summary>
public sealed class GitHubTransportTests : IDisposable
{
    private const int Logins = 24;
    private const string Callback = "https://trackeep.example.org/auth/callback";
    private readonly TempDirectory folder = new();

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task Concurrent_logins_reach_GitHub_over_HTTP2_on_one_shared_connection(string build)
    {
        await using var gitHub = await FakeGitHub.StartAsync(tls: HttpProtocols.Http2);
        var trustedCertificates = Path.Combine(folder.Path, "fake-github.pem");
        await File.WriteAllTextAsync(trustedCertificates, gitHub.Certificate!.ExportCertificatePem());
        var allowlist = new AllowlistBuilder().Add("trackeep", [Callback], InstanceKey.Rsa()).ToJson();
        await using var broker = await NativeBroker.StartAsync(gitHub, folder.Path, allowlist, new Dictionary<string, string?> { ["SSL_CERT_FILE"] = trustedCertificates }, build: build);
        // The test's own way through GitHub's authorize page trusts exactly the fake's certificate.
        using var gitHubPages = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == gitHub.Certificate.GetCertHashString() },
        })
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        var outcomes = await Task.WhenAll(Enumerable.Range(0, Logins).Select(async index =>
        {
            using var browser = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(broker.PublicUrl) };
            using var start = await browser.GetAsync(Browser.StartUrl(Callback, state: $"s-{index}"));
            start.StatusCode.Should().Be(HttpStatusCode.Redirect, await start.Content.ReadAsStringAsync());
            using var approval = await gitHubPages.GetAsync(start.Headers.Location);
            approval.StatusCode.Should().Be(HttpStatusCode.Redirect);
            using var back = await browser.GetAsync(approval.Headers.Location!.PathAndQuery);
            return QueryHelpers.ParseQuery(back.Headers.Location?.Query);
        }));

        outcomes.Should().AllSatisfy(query => query.Should().ContainKey("token", $"every login completes over HTTP/2 ({broker.Output})"));
        var backchannel = gitHub.Requests.Where(request => !request.Path.StartsWith("/login/oauth/authorize", StringComparison.Ordinal)).ToList();
        backchannel.Should().HaveCount(Logins * 3, "each login exchanges its code and reads /user and /user/emails");
        backchannel.Should().OnlyContain(request => request.Protocol == "HTTP/2");
        backchannel.Select(request => request.ConnectionId).Distinct().Should().ContainSingle(
            "the broker's calls share one HTTP/2 connection (with HTTP/1.1 each concurrent call needs a connection, and a TLS handshake, of its own)");
    }

    public void Dispose() => folder.Dispose();
}
