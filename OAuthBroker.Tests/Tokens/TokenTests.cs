using System.Net;
using System.Text.Json;
using Jose;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tokens;

namespace OAuthBroker.Tests.Tokens;

public sealed class TokenTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task Token_is_an_ES256_JWS_whose_kid_is_in_the_JWKS_and_verifies_against_it()
    {
        using var browser = fixture.Factory.NewBrowser();
        var token = (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token;

        var jwks = new JsonWebKeySet(await browser.Client.GetStringAsync("/.well-known/jwks.json"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = "http://localhost",
            ValidAudience = "trackeep-home",
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        });

        result.IsValid.Should().BeTrue(result.Exception?.Message);
        var jwt = (JsonWebToken)result.SecurityToken;
        jwt.Alg.Should().Be("ES256");
        jwt.Typ.Should().Be("JWT");
        jwks.Keys.Select(key => key.Kid).Should().Contain(jwt.Kid);
        jwks.Keys.Should().OnlyContain(key => key.Use == "sig" && !key.HasPrivateKey);
    }

    [Fact]
    public async Task Token_carries_the_Trackeep_claims_and_the_standard_ones()
    {
        using var browser = fixture.Factory.NewBrowser();
        var user = fixture.GitHub.User;

        var jwt = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        jwt.Issuer.Should().Be("http://localhost");
        jwt.Audiences.Should().Equal("trackeep-home");
        jwt.Subject.Should().Be(jwt.GetPayloadValue<long>("user_id").ToString(System.Globalization.CultureInfo.InvariantCulture));
        jwt.Id.Should().MatchRegex("^[A-Za-z0-9_-]{22}$");
        (jwt.ValidTo - jwt.IssuedAt).Should().Be(TimeSpan.FromMinutes(5), "a token handed back in the query lives Broker:UrlTokenLifetime");
        jwt.ValidFrom.Should().Be(jwt.IssuedAt);
        jwt.GetPayloadValue<long>("github_id").Should().Be(user.Id);
        jwt.GetPayloadValue<string>("username").Should().Be(user.Login);
        jwt.GetPayloadValue<string>("name").Should().Be(user.Name);
        jwt.GetPayloadValue<string>("avatar_url").Should().Be(user.AvatarUrl);
        jwt.GetPayloadValue<string>("email").Should().Be(user.PrimaryEmail);
        jwt.GetPayloadValue<string>("token_type").Should().Be("bearer");
        jwt.GetPayloadValue<string>("scope").Should().Be("read:user user:email");
        jwt.GetPayloadValue<string>("access_token").Split('.').Should().HaveCount(5, "it is a compact JWE");
    }

    [Fact]
    public async Task Every_login_gets_a_new_jti()
    {
        using var browser = fixture.Factory.NewBrowser();

        var one = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        var two = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);

        one.Id.Should().NotBe(two.Id);
    }

    [Theory]
    [InlineData(StandardInstances.TrackeepCallback, "trackeep-home", "RSA-OAEP-256")]
    [InlineData("https://legacy.example.com/oauth/done", "legacy-rsa", "RSA-OAEP")]
    [InlineData("https://a1.tenants.example.net/auth/callback", "tenants", "ECDH-ES+A256KW")]
    [InlineData("http://[::1]:8080/callback", "loopback-app", "A256KW")]
    [InlineData("https://direct.example.org/cb", "direct-app", "dir")]
    public async Task Access_token_decrypts_with_the_instance_key_and_only_with_it(string redirectUri, string instanceId, string algorithm)
    {
        using var browser = fixture.Factory.NewBrowser();
        var jwt = new JsonWebToken((await browser.LoginAsync(redirectUri)).Token);
        var jwe = jwt.GetPayloadValue<string>("access_token");

        var header = JsonSerializer.Deserialize<Dictionary<string, object>>(Base64Url.Decode(jwe.Split('.')[0]))!;
        header["alg"].ToString().Should().Be(algorithm);
        header["enc"].ToString().Should().Be("A256GCM");
        var token = fixture.Instances.KeyFor(instanceId).Decrypt(jwe);
        token.Should().StartWith("gho_");
        fixture.GitHub.Secrets.Should().Contain(token);

        var other = instanceId == "direct-app" ? fixture.Instances.Loopback : fixture.Instances.Direct;
        var decryptWithOtherKey = () => JWT.Decode(jwe, other.DecryptionKey);
        decryptWithOtherKey.Should().Throw<Exception>("another instance's key must not open it");
    }

    [Fact]
    public async Task Metadata_describes_the_broker()
    {
        using var browser = fixture.Factory.NewBrowser();

        using var metadata = JsonDocument.Parse(await browser.Client.GetStringAsync("/.well-known/oauth-authorization-server"));

        var root = metadata.RootElement;
        root.GetProperty("issuer").GetString().Should().Be("http://localhost");
        root.GetProperty("authorization_endpoint").GetString().Should().Be("http://localhost/oauth/authorize");
        root.GetProperty("jwks_uri").GetString().Should().Be("http://localhost/.well-known/jwks.json");
        root.EnumerateObject().Select(member => member.Name).Should().BeEquivalentTo(
            "issuer", "authorization_endpoint", "jwks_uri", "userinfo_endpoint", "token_endpoint", "token_endpoint_auth_methods_supported",
            "token_endpoint_auth_signing_alg_values_supported", "revocation_endpoint", "revocation_endpoint_auth_methods_supported",
            "revocation_endpoint_auth_signing_alg_values_supported", "response_types_supported", "grant_types_supported", "code_challenge_methods_supported",
            "response_modes_supported", "authorization_response_iss_parameter_supported", "scopes_supported", "token_signing_alg_values_supported",
            "access_token_encryption_alg_values_supported", "access_token_encryption_enc_values_supported",
            "subject_types_supported", "id_token_signing_alg_values_supported", "claims_supported", "prompt_values_supported",
            "claims_parameter_supported", "request_parameter_supported", "request_uri_parameter_supported", "end_session_endpoint",
            "github_app_installation_endpoint", "github_org_access_endpoint");
        root.GetProperty("userinfo_endpoint").GetString().Should().Be("http://localhost/oauth/userinfo");
        root.GetProperty("response_types_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal(["code"], "the authorization-code flow only: no implicit grant");
        root.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal(["authorization_code", "refresh_token"], "left out, the list would default to authorization_code and implicit");
        root.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal("S256");
        root.GetProperty("token_endpoint").GetString().Should().Be("http://localhost/oauth/token");
        root.GetProperty("revocation_endpoint").GetString().Should().Be("http://localhost/oauth/revoke");
        root.GetProperty("token_endpoint_auth_methods_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal("private_key_jwt", "client_secret_basic", "client_secret_post", "none");
        root.GetProperty("token_endpoint_auth_signing_alg_values_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal("ES256", "RS256", "PS256");
        root.GetProperty("response_modes_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal("query", "fragment", "form_post");
        root.GetProperty("authorization_response_iss_parameter_supported").GetBoolean().Should().BeTrue();
        root.GetProperty("access_token_encryption_alg_values_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal("RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "A256KW", "dir");
        root.GetProperty("access_token_encryption_enc_values_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal("A256GCM");
        root.GetProperty("token_signing_alg_values_supported").EnumerateArray().Select(e => e.GetString()).Should().Equal("ES256");
        root.GetProperty("scopes_supported").EnumerateArray().Select(e => e.GetString()).Should().Contain(["openid", "profile", "email", "github:read:user", "github:user:email", "github:repo"], "the scope values /oauth/authorize takes");
    }

    [Fact]
    public async Task Signing_key_is_stored_encrypted_not_as_plain_PKCS8()
    {
        var store = fixture.Factory.Services.GetRequiredService<SigningKeyStore>();
        var privateKey = ((ECDsaSecurityKey)store.Active.SecurityKey).ECDsa.ExportPkcs8PrivateKey();
        var privateScalar = ((ECDsaSecurityKey)store.Active.SecurityKey).ECDsa.ExportParameters(includePrivateParameters: true).D!;

        var stored = (byte[])(await fixture.Factory.ValueAsync("SELECT protected_key FROM signing_keys"))!;

        stored.AsSpan().IndexOf(privateKey).Should().Be(-1);
        stored.AsSpan().IndexOf(privateScalar).Should().Be(-1);
        var import = () => System.Security.Cryptography.ECDsa.Create().ImportPkcs8PrivateKey(stored, out _);
        import.Should().Throw<System.Security.Cryptography.CryptographicException>();
    }
}

public sealed class SigningKeyLifetimeTests : FakeGitHubTest
{
    [Fact]
    public async Task Restart_keeps_the_signing_key_and_tokens_issued_before_still_verify()
    {
        string token;
        string jwksBefore;
        await using (var first = new BrokerFactory(GitHub, Folder, Instances.Json))
        {
            using var browser = first.NewBrowser();
            token = (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token;
            jwksBefore = await browser.Client.GetStringAsync("/.well-known/jwks.json");
        }

        await using var second = new BrokerFactory(GitHub, Folder, Instances.Json);
        using var client = second.CreateClient();
        (await client.GetStringAsync("/.well-known/jwks.json")).Should().Be(jwksBefore);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        request.Headers.Authorization = new("Bearer", token);
        using var response = await client.SendAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        second.Logs.Lines.Should().NotContain(line => line.EventId == 3001, "no new key is created on restart");
    }

    [Fact]
    public async Task RS256_can_be_configured()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Broker:SigningAlgorithm"] = "RS256", ["Broker:TokenLifetime"] = "00:05:00" });
        using var browser = broker.NewBrowser();

        var jwt = new JsonWebToken((await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token);
        var jwks = new JsonWebKeySet(await browser.Client.GetStringAsync("/.well-known/jwks.json"));

        jwt.Alg.Should().Be("RS256");
        (jwt.ValidTo - jwt.IssuedAt).Should().Be(TimeSpan.FromMinutes(5));
        jwks.Keys.Single(key => key.Kid == jwt.Kid).Kty.Should().Be("RSA");
    }

    [Fact]
    public async Task A_lost_Data_Protection_key_ring_stops_start_up_with_a_clear_message()
    {
        await using (var first = new BrokerFactory(GitHub, Folder, Instances.Json))
        {
            _ = first.Server;
        }

        await using var second = new BrokerFactory(GitHub, Folder, Instances.Json);
        if (second.UsesPostgres)
        {
            await second.ValueAsync("DELETE FROM data_protection_keys");
        }
        else
        {
            Directory.Delete(Path.Combine(Folder.Path, "data", "keys"), recursive: true);
        }


        StartupFailure.Of(second).Should().Contain("cannot be decrypted: the Data Protection key ring");
    }
}
