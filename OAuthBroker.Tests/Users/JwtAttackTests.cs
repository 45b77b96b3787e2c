using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Tests.Support;
using OAuthBroker.Tokens;

namespace OAuthBroker.Tests.Users;

/// <summary>
/// Tokens an attacker would try at /api/v1/user/me. Where it makes the test stronger, the token is signed with the
/// broker's real key, so the refusal cannot come from a bad signature alone. Every one must get 401, never 500.
/// </summary>
public sealed class JwtAttackTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>, IAsyncLifetime
{
    private string valid = "";
    private JsonObject validHeader = null!;
    private JsonObject validPayload = null!;

    private ECDsa BrokerKey => ((ECDsaSecurityKey)fixture.Factory.Services.GetRequiredService<SigningKeyStore>().Active.SecurityKey).ECDsa;

    private string Kid => (string)validHeader["kid"]!;

    public async Task InitializeAsync()
    {
        using var browser = fixture.Factory.NewBrowser();
        valid = (await browser.LoginAsync(StandardInstances.TrackeepCallback)).Token;
        validHeader = JsonNode.Parse(Base64UrlEncoder.Decode(valid.Split('.')[0]))!.AsObject();
        validPayload = JsonNode.Parse(Base64UrlEncoder.Decode(valid.Split('.')[1]))!.AsObject();
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task The_untouched_token_is_accepted() => (await StatusAsync(valid)).Should().Be(HttpStatusCode.OK);

    [Theory]
    [InlineData("none")]
    [InlineData("None")]
    [InlineData("NONE")]
    [InlineData("nOnE")]
    public async Task Alg_none_is_refused_in_any_case(string alg)
    {
        var header = Encode(new JsonObject { ["alg"] = alg, ["typ"] = "JWT" });
        var payload = valid.Split('.')[1];

        await AssertRefusedAsync($"{header}.{payload}.");
        await AssertRefusedAsync($"{header}.{payload}.{valid.Split('.')[2]}");
    }

    [Fact]
    public async Task HS256_keyed_with_the_public_key_is_refused()
    {
        using var client = fixture.Factory.CreateClient();
        var jwks = await client.GetStringAsync("/.well-known/jwks.json");
        var publicKey = BrokerKey.ExportSubjectPublicKeyInfo();
        foreach (var secret in new[] { publicKey, Encoding.UTF8.GetBytes(BrokerKey.ExportSubjectPublicKeyInfoPem()), Encoding.UTF8.GetBytes(jwks) })
        {
            await AssertRefusedAsync(SignHmac(new JsonObject { ["alg"] = "HS256", ["kid"] = Kid, ["typ"] = "JWT" }, validPayload, secret));
        }
    }

    [Theory]
    [InlineData("unknown-kid")]
    [InlineData("../../../../etc/passwd")]
    [InlineData("' OR '1'='1' --")]
    [InlineData("")]
    public async Task A_kid_the_broker_does_not_hold_is_refused(string kid)
    {
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        await AssertRefusedAsync(Sign(new JsonObject { ["alg"] = "ES256", ["kid"] = kid, ["typ"] = "JWT" }, validPayload, attacker));
        await AssertRefusedAsync(Sign(new JsonObject { ["alg"] = "ES256", ["kid"] = kid, ["typ"] = "JWT" }, validPayload, BrokerKey));
    }

    [Fact]
    public async Task A_missing_kid_is_refused_even_with_our_signature() =>
        await AssertRefusedAsync(Sign(new JsonObject { ["alg"] = "ES256", ["typ"] = "JWT" }, validPayload, BrokerKey));

    [Fact]
    public async Task Key_hints_in_the_header_are_refused_even_with_our_signature()
    {
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var attackerJwk = JsonSerializer.SerializeToNode(new Jose.Jwk(attacker, false).ToDictionary())!;
        var certificate = new CertificateRequest("CN=attacker", attacker, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var hints = new (string Name, JsonNode Value)[]
        {
            ("jku", "https://attacker.example/jwks.json"),
            ("x5u", "https://attacker.example/cert.pem"),
            ("jwk", attackerJwk),
            ("x5c", new JsonArray(Convert.ToBase64String(certificate.RawData))),
            ("crit", new JsonArray("exp")),
        };

        foreach (var (name, value) in hints)
        {
            var header = new JsonObject { ["alg"] = "ES256", ["kid"] = Kid, ["typ"] = "JWT", [name] = value.DeepClone() };
            await AssertRefusedAsync(Sign(header, validPayload, BrokerKey));
            var attackerHeader = new JsonObject { ["alg"] = "ES256", ["kid"] = "attacker", ["typ"] = "JWT", [name] = value.DeepClone() };
            await AssertRefusedAsync(Sign(attackerHeader, validPayload, attacker));
        }
    }

    [Fact]
    public async Task Stripped_truncated_foreign_and_zero_signatures_are_refused()
    {
        var parts = valid.Split('.');
        using var browser = fixture.Factory.NewBrowser();
        var other = (await browser.LoginAsync("https://direct.example.org/cb")).Token.Split('.');

        await AssertRefusedAsync($"{parts[0]}.{parts[1]}.");
        await AssertRefusedAsync($"{parts[0]}.{parts[1]}");
        await AssertRefusedAsync($"{parts[0]}.{parts[1]}.{parts[2][..^10]}");
        await AssertRefusedAsync($"{parts[0]}.{parts[1]}.{other[2]}");
        // CVE-2022-21449 ("psychic signatures"): r = s = 0 verified as valid in some Java versions.
        await AssertRefusedAsync($"{parts[0]}.{parts[1]}.{Base64UrlEncoder.Encode(new byte[64])}");
    }

    [Fact]
    public async Task Duplicate_claims_are_refused_even_with_our_signature()
    {
        var payloadJson = validPayload.ToJsonString();
        // Duplicates that a last-wins parser would accept: only the duplicate check stands between them and a 200.
        var duplicated = payloadJson[..^1] + ",\"username\":\"someone-else\"}";

        await AssertRefusedAsync(SignRaw(validHeader.ToJsonString(), duplicated, BrokerKey));
        await AssertRefusedAsync(SignRaw("{\"alg\":\"ES256\",\"kid\":\"" + Kid + "\",\"kid\":\"" + Kid + "\",\"typ\":\"JWT\"}", payloadJson, BrokerKey));
    }

    [Fact]
    public async Task Not_yet_valid_and_wrong_issuer_tokens_are_refused_even_with_our_signature()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var future = validPayload.DeepClone().AsObject();
        future["nbf"] = now + 3600;
        future["iat"] = now + 3600;
        future["exp"] = now + 7200;
        var foreignIssuer = validPayload.DeepClone().AsObject();
        foreignIssuer["iss"] = "https://evil.example.com";
        var expired = validPayload.DeepClone().AsObject();
        expired["exp"] = now - 3600;
        var noExpiry = validPayload.DeepClone().AsObject();
        noExpiry.Remove("exp");

        foreach (var payload in new[] { future, foreignIssuer, expired, noExpiry })
        {
            await AssertRefusedAsync(Sign(validHeader, payload, BrokerKey));
        }

        (await StatusAsync(Sign(validHeader, validPayload, BrokerKey))).Should().Be(HttpStatusCode.OK, "the same signing path with the real payload works");
    }

    [Fact]
    public async Task A_token_over_the_size_bound_is_refused_even_with_our_signature()
    {
        var payload = validPayload.DeepClone().AsObject();
        payload["padding"] = new string('x', BrokerTokenValidator.MaxTokenBytes);

        await AssertRefusedAsync(Sign(validHeader, payload, BrokerKey));
    }

    [Theory]
    [InlineData("e30.bm90IGpzb24.AAAA")]
    [InlineData("bm90IGpzb24.e30.AAAA")]
    [InlineData("W10.e30.AAAA")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9.e30=.AAAA")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9.e30.AA+/")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9..AAAA")]
    [InlineData("a.b.c.d.e")]
    [InlineData("....")]
    [InlineData("eyJhbGciOiJFUzI1NiJ9.eyJ.AAAA")]
    public async Task Segments_that_are_not_base64url_JSON_are_refused(string token) => await AssertRefusedAsync(token);

    private async Task AssertRefusedAsync(string token)
    {
        using var client = fixture.Factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        using var response = await client.SendAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized, token.Length > 200 ? token[..200] : token);
        response.Headers.WwwAuthenticate.ToString().Should().StartWith("Bearer");
    }

    private async Task<HttpStatusCode> StatusAsync(string token)
    {
        using var client = fixture.Factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/user/me");
        request.Headers.Authorization = new("Bearer", token);
        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }

    private static string Encode(JsonNode node) => Base64UrlEncoder.Encode(node.ToJsonString());

    private static string Sign(JsonObject header, JsonObject payload, ECDsa key) => SignRaw(header.ToJsonString(), payload.ToJsonString(), key);

    private static string SignRaw(string headerJson, string payloadJson, ECDsa key)
    {
        var input = $"{Base64UrlEncoder.Encode(headerJson)}.{Base64UrlEncoder.Encode(payloadJson)}";
        return $"{input}.{Base64UrlEncoder.Encode(key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256))}";
    }

    private static string SignHmac(JsonObject header, JsonObject payload, byte[] secret)
    {
        var input = $"{Encode(header)}.{Encode(payload)}";
        return $"{input}.{Base64UrlEncoder.Encode(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)))}";
    }
}
