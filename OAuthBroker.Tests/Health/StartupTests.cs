using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Health;

public sealed class StartupTests : FakeGitHubTest
{
    [Fact]
    public async Task Readiness_says_only_ready_to_anyone_and_reports_each_check_to_admins()
    {
        const string token = "startup-admin-token-0123456789abcdef0123";
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Admin:ApiToken"] = token });
        using var client = broker.CreateClient();

        using var anonymous = await client.GetAsync("/readyz");
        (await client.GetStringAsync("/healthz")).Should().Be("ok");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/api/health") { Headers = { Authorization = new("Bearer", token) } };
        using var admin = await client.SendAsync(request);
        using var unauthenticated = await client.GetAsync("/admin/api/health");

        anonymous.StatusCode.Should().Be(HttpStatusCode.OK);
        (await anonymous.Content.ReadAsStringAsync()).Should().Be("""{"ready":true}""", "file paths, errors and key ids are not for anonymous callers");
        admin.StatusCode.Should().Be(HttpStatusCode.OK);
        using var body = JsonDocument.Parse(await admin.Content.ReadAsStringAsync());
        body.RootElement.GetProperty("ready").GetBoolean().Should().BeTrue();
        body.RootElement.GetProperty("checks").EnumerateArray().Select(check => check.GetProperty("name").GetString())
            .Should().Equal("database", "allowlist", "signing_key");
        unauthenticated.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public void Settings_files_are_read_once_and_not_watched()
    {
        // A reloadable settings file puts a recursive watcher on the content root, woken by every database write
        // when the data folder sits under it (the default layout); settings are validated once at start-up anyway.
        using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);

        var configuration = (IConfigurationRoot)broker.Services.GetRequiredService<IConfiguration>();
        var files = configuration.Providers.OfType<FileConfigurationProvider>().ToList();

        files.Should().Contain(file => file.Source.Path == "appsettings.json");
        files.Should().OnlyContain(file => !file.Source.ReloadOnChange);
    }

    [Theory]
    [InlineData("GitHub:ClientId", "", "GitHub:ClientId is required")]
    [InlineData("GitHub:ClientSecret", "", "GitHub:ClientSecret is required")]
    [InlineData("GitHub:BaseUrl", "http://github.example.com", "GitHub:BaseUrl must use https")]
    [InlineData("GitHub:ApiUrl", "not a url", "GitHub:ApiUrl must be an absolute http(s) URL")]
    [InlineData("Broker:PublicUrl", "https://broker.example.com/?x=1", "Broker:PublicUrl must not carry a query")]
    [InlineData("Broker:TokenLifetime", "2.00:00:00", "Broker:TokenLifetime must be between")]
    [InlineData("Broker:SigningAlgorithm", "HS256", "Broker:SigningAlgorithm must be ES256 or RS256")]
    public void Bad_configuration_stops_start_up_naming_the_key(string key, string value, string message)
    {
        using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { [key] = value });

        StartupFailure.Of(broker).Should().Contain(message);
    }

    [Theory]
    [InlineData("http://0.0.0.0:8080")]
    [InlineData("http://127.0.0.1:5080;http://[::1]:5080")]
    [InlineData("http://127.0.0.1:0")]
    public void Without_a_public_URL_start_up_stops_naming_it_unless_the_broker_listens_on_one_loopback_address(string urls)
    {
        using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Broker:PublicUrl"] = "", ["Urls"] = urls });

        StartupFailure.Of(broker).Should().Contain("Broker:PublicUrl is required").And.Contain("Broker__PublicUrl");
    }

    [Fact]
    public void Without_a_public_URL_a_broker_on_one_loopback_address_is_reached_there()
    {
        using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Broker:PublicUrl"] = "", ["Urls"] = "http://127.0.0.1:5999" });

        broker.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<OAuthBroker.Broker.BrokerOptions>>().Value.Issuer.Should().Be("http://127.0.0.1:5999");
    }

    [Fact]
    public void GitHub_Enterprise_URLs_are_accepted()
    {
        using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
        {
            ["GitHub:BaseUrl"] = "https://ghe.example.com",
            ["GitHub:ApiUrl"] = "https://ghe.example.com/api/v3",
        });

        var options = broker.Services.GetService(typeof(IOptions<OAuthBroker.GitHub.GitHubOptions>)) as IOptions<OAuthBroker.GitHub.GitHubOptions>;

        options!.Value.AuthorizeEndpoint.Should().Be("https://ghe.example.com/login/oauth/authorize");
        options.Value.TokenEndpoint.Should().Be("https://ghe.example.com/login/oauth/access_token");
        options.Value.UserEndpoint.Should().Be("https://ghe.example.com/api/v3/user");
        options.Value.UserEmailsEndpoint.Should().Be("https://ghe.example.com/api/v3/user/emails");
    }

    [Fact]
    public void Invalid_allowlist_stops_start_up_naming_the_entry_and_problem()
    {
        using var broker = new BrokerFactory(GitHub, Folder, """{ "instances": [ { "id": "bad", "redirectUris": ["http://bad.example.com/cb"], "deliverAccessToken": false } ] }""");

        StartupFailure.Of(broker).Should().Contain("instances[0] (\"bad\"): redirectUris[0] must use https");
    }
}
