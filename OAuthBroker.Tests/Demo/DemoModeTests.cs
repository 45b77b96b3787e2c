using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Demo;

/// <summary>Demo mode on a real Kestrel socket: the broker calls its own stand-in GitHub over HTTP, as it does when run.</summary>
public sealed partial class DemoModeTests : IDisposable
{
    private readonly TempDirectory folder = new();

    public void Dispose() => folder.Dispose();

    [Fact]
    public async Task Demo_signs_in_the_demo_user_and_the_demo_instance_shows_verified_claims_and_the_decrypted_token()
    {
        var port = LoopbackPort.Free();
        await using var demo = new DemoFactory(folder, $"http://127.0.0.1:{port}", "Development");
        demo.UseKestrel(port);
        demo.StartServer();
        using var handler = new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() };
        using var browser = new HttpClient(handler) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        var start = await browser.GetStringAsync("/demo/instance");
        var login = WebUtility.HtmlDecode(SignInLink().Match(start).Groups[1].Value);
        using var toGitHub = await browser.GetAsync(login);
        toGitHub.StatusCode.Should().Be(HttpStatusCode.Redirect);
        var consent = await browser.GetStringAsync(toGitHub.Headers.Location);
        var fields = HiddenField().Matches(consent).ToDictionary(match => match.Groups[1].Value, match => WebUtility.HtmlDecode(match.Groups[2].Value));
        fields["decision"] = "approve";
        using var approved = await browser.PostAsync(toGitHub.Headers.Location!.GetLeftPart(UriPartial.Path), new FormUrlEncodedContent(fields));
        // Like GitHub's own "you are being redirected" page: a page that moves on by itself, not a 302 (see DemoGitHub).
        approved.StatusCode.Should().Be(HttpStatusCode.OK);
        var back = WebUtility.HtmlDecode(ContinueLink().Match(await approved.Content.ReadAsStringAsync()).Groups[1].Value);
        using var toInstance = await browser.GetAsync(back);
        toInstance.StatusCode.Should().Be(HttpStatusCode.Redirect, await toInstance.Content.ReadAsStringAsync());
        var page = await browser.GetStringAsync(toInstance.Headers.Location);

        page.Should().Contain("Signed in as octocat-demo");
        page.Should().Contain("verified against");
        page.Should().MatchRegex("id=\"access-token\">gho_demo[0-9a-f]{32}<");
        page.Should().Contain("octocat-demo@example.com", "the private address came from /user/emails");
        page.Should().Contain("HTTP 200", "the decrypted token worked against the stand-in GitHub");
    }

    [GeneratedRegex("href=\"([^\"]*/auth/github[^\"]*)\"")]
    private static partial Regex SignInLink();

    [GeneratedRegex("id=\"continue\" href=\"([^\"]*)\"")]
    private static partial Regex ContinueLink();

    [GeneratedRegex("<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\">")]
    private static partial Regex HiddenField();

    private sealed class DemoFactory(TempDirectory folder, string publicUrl, string environment) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            File.WriteAllText(Path.Combine(folder.Path, "allow.json"), """{ "instances": [] }""");
            builder.UseEnvironment(environment);
            builder.UseSetting("Demo:Enabled", "true");
            builder.UseSetting("Broker:PublicUrl", publicUrl);
            builder.UseSetting("Broker:AllowlistPath", Path.Combine(folder.Path, "allow.json"));
            builder.UseSetting("Broker:DataPath", Path.Combine(folder.Path, "data"));
        }
    }
}
