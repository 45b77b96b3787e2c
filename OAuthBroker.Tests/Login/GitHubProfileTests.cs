using System.Net;
using Microsoft.IdentityModel.JsonWebTokens;
using OAuthBroker.GitHub;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Login;

/// <summary>What GitHub says about a user is checked before it reaches a log line, a page, the database or a JWT.</summary>
public sealed class GitHubProfileTests : FakeGitHubTest
{
    [Theory]
    [InlineData("octo\ncat")]
    [InlineData("<script>alert(1)</script>")]
    [InlineData("octo cat")]
    [InlineData("-octocat")]
    public async Task A_login_that_is_not_a_GitHub_login_ends_the_sign_in_and_is_never_logged(string login)
    {
        GitHub.User = GitHub.User with { Login = login };
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using var browser = broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback);

        outcome.Response.StatusCode.Should().Be(HttpStatusCode.Redirect);
        outcome.Query.Should().NotContainKey("token");
        outcome.Query["error"].Should().Be("server_error");
        broker.Logs.AllText.Should().NotContain(login).And.Contain("well-formed login");
    }

    [Fact]
    public async Task Profile_fields_with_control_characters_bidi_overrides_or_foreign_schemes_are_left_out()
    {
        GitHub.User = GitHub.User with { Name = "Octo\u202Eevil", PublicEmail = "octo@example.com\r\nBcc: x@example.com", AvatarUrl = "javascript:alert(1)" };
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using var browser = broker.NewBrowser();

        var outcome = await browser.LoginAsync(StandardInstances.TrackeepCallback, scope: "read:user");
        var jwt = new JsonWebToken(outcome.Token);

        jwt.TryGetPayloadValue<string>("name", out _).Should().BeFalse();
        jwt.TryGetPayloadValue<string>("email", out _).Should().BeFalse();
        jwt.TryGetPayloadValue<string>("avatar_url", out _).Should().BeFalse();
        jwt.GetPayloadValue<string>("username").Should().Be(GitHub.User.Login, "the login itself is well formed");
    }

    [Theory]
    [InlineData("octocat", true)]
    [InlineData("octo-cat-2", true)]
    [InlineData("jdoe_acme", true)]
    [InlineData("first.last", true)]
    [InlineData("", false)]
    [InlineData("octo/cat", false)]
    [InlineData("octo\u0000cat", false)]
    [InlineData("оctocat", false)]
    public void Logins_are_letters_digits_hyphens_underscores_and_dots(string login, bool valid) =>
        GitHubStrings.IsLogin(login).Should().Be(valid);
}
