using System.Text.Json;

namespace OAuthBroker.Tests.Support;

/// <summary>What headless Chromium saw walking the demo (OAuthBroker.Tests/browser/demo-walk.mjs).</summary>
public sealed record DemoWalk(string InstancePage, string ConsentPage, string Title, Dictionary<string, string> Claims, string AccessToken, string UserCall, JsonElement UserJson, string[] ConsoleErrors)
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    /// <summary>Opens <paramref name="brokerUrl"/>, clicks <em>Sign in</em>, then <em>Authorize</em>, and reads the instance page.</summary>
    /// <param name="decision">"cancel" clicks <em>Cancel</em> at the stand-in GitHub instead, then <em>Start again</em>.</param>
    public static async Task<DemoWalk> RunAsync(string brokerUrl, string decision = "authorize")
    {
        var (exit, output, error) = await NodeProcess.RunAsync("OAuthBroker.Tests/browser", "demo-walk.mjs",
            new Dictionary<string, string> { ["BROKER_URL"] = brokerUrl, ["DECISION"] = decision }, TimeSpan.FromSeconds(90));
        exit.Should().Be(0, error);
        return JsonSerializer.Deserialize<DemoWalk>(output.Trim().Split('\n')[^1], Web)!;
    }

    /// <summary>Everything the README promises the demo shows.</summary>
    public void ShouldShowASignedInDemoUser(string issuer)
    {
        ConsoleErrors.Should().BeEmpty();
        InstancePage.Should().Be(issuer + "/demo/instance", "the broker's root leads to the demo instance");
        ConsentPage.Should().Be("/demo/github/login/oauth/authorize");
        Title.Should().Be("Signed in as octocat-demo");
        Claims.Should().Contain("iss", issuer).And.Contain("aud", "demo-instance").And.Contain("username", "octocat-demo");
        Claims["access_token"].Split('.').Should().HaveCount(5, "the claim is the compact JWE the instance decrypted");
        AccessToken.Should().MatchRegex("^gho_demo[0-9a-f]{32}$", "the page shows the decrypted stand-in token");
        UserCall.Should().EndWith("HTTP 200", "the decrypted token worked against the stand-in GitHub's /user");
        UserJson.GetProperty("login").GetString().Should().Be("octocat-demo");
    }
}
