using System.Text;
using OAuthBroker.Allowlist;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Allowlist;

public sealed class AllowlistFileTests
{
    private static readonly string[] DefaultScopes = ["read:user", "user:email"];
    private static readonly string RsaKey = System.Text.Json.JsonSerializer.Serialize(InstanceKey.Rsa().PublicJwk);

    [Theory]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"] } ] }""", "instances[0] (\"a\"): \"encryptionKey\" is needed")]
    [InlineData("""{ "instances": [ { "id": "a b", "redirectUris": ["https://a.example.com/cb"], "deliverAccessToken": false } ] }""", "\"id\" is required")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": [], "deliverAccessToken": false } ] }""", "instances[0] (\"a\"): \"redirectUris\" must list")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["http://a.example.com/cb"], "deliverAccessToken": false } ] }""", "redirectUris[0] must use https")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com"], "deliverAccessToken": false } ] }""", "redirectUris[0] has no path")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://*.com/cb"], "deliverAccessToken": false } ] }""", "wildcard directly under a top-level domain")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.*.example.com/cb"], "deliverAccessToken": false } ] }""", "'*' other than as the whole left-most host label")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://x*.example.com/cb"], "deliverAccessToken": false } ] }""", "'*' other than")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["http://*.example.com/cb"], "deliverAccessToken": false } ] }""", "must use https")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "scopes": ["Repo"], "deliverAccessToken": false } ] }""", "invalid GitHub scope 'Repo'")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUri": ["https://a.example.com/cb"], "deliverAccessToken": false } ] }""", "redirectUri")]
    [InlineData("""{ "instances": [ { "id": "a", "id": "b", "redirectUris": ["https://a.example.com/cb"], "deliverAccessToken": false } ] }""", "not valid allowlist JSON")]
    [InlineData("""{ "instances": [ """, "not valid allowlist JSON")]
    [InlineData("""[]""", "not valid allowlist JSON")]
    [InlineData("""{ }""", "\"instances\" array")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "AAAA" } } ] }""", "exactly 256 bits")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "alg": "A128KW" } } ] }""", "A256KW or dir")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": { "kty": "OKP", "crv": "X25519", "x": "AAAA" } } ] }""", "\"kty\" RSA, EC or oct")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": "secret" } ] }""", "must be a JSON Web Key object")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": { "kty": "EC", "crv": "P-256", "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } } ] }""", "not a usable EC key")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "use": "sig" } } ] }""", "\"use\": \"enc\"")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "key_ops": ["sign", "verify"] } } ] }""", "\"key_ops\" without any of encrypt")]
    [InlineData("""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "key_ops": "wrapKey" } } ] }""", "\"key_ops\" without any of encrypt")]
    public void Invalid_entry_is_reported_with_its_position_and_problem(string json, string expected)
    {
        var (_, errors) = AllowlistFile.Parse(Encoding.UTF8.GetBytes(json), DefaultScopes);

        string.Join("\n", errors).Should().Contain(expected);
    }

    [Fact]
    public void A_public_client_is_read_and_one_with_a_credential_is_refused()
    {
        var json = """
            { "instances": [
              { "id": "spa", "redirectUris": ["https://spa.example.com/cb"], "deliverAccessToken": false, "public": true },
              { "id": "both", "redirectUris": ["https://both.example.com/cb"], "deliverAccessToken": false, "public": true, "clientSecret": "sha256:0000000000000000000000000000000000000000000000000000000000000000" }
            ] }
            """;

        var (instances, errors) = AllowlistFile.Parse(Encoding.UTF8.GetBytes(json), DefaultScopes);

        instances.Should().ContainSingle().Which.Public.Should().BeTrue();
        errors.Should().ContainSingle().Which.Should().Contain("(\"both\"): \"public\" a public client has no credential");
    }

    [Fact]
    public void Private_RSA_key_is_refused()
    {
        var key = InstanceKey.Rsa();
        var json = $$"""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": {{System.Text.Json.JsonSerializer.Serialize(key.PrivateJwk)}} } ] }""";

        var (_, errors) = AllowlistFile.Parse(Encoding.UTF8.GetBytes(json), DefaultScopes);

        errors.Should().ContainSingle().Which.Should().Contain("private key");
    }

    [Fact]
    public void Small_RSA_key_is_refused()
    {
        var key = InstanceKey.Rsa(bits: 1024);
        var json = $$"""{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "encryptionKey": {{System.Text.Json.JsonSerializer.Serialize(key.PublicJwk)}} } ] }""";

        var (_, errors) = AllowlistFile.Parse(Encoding.UTF8.GetBytes(json), DefaultScopes);

        errors.Should().ContainSingle().Which.Should().Contain("1024-bit");
    }

    [Fact]
    public void Every_key_type_is_accepted_with_a_default_algorithm()
    {
        var json = $$"""
            { "instances": [
              { "id": "rsa", "redirectUris": ["https://rsa.example.com/cb"], "encryptionKey": {{RsaKey}} },
              { "id": "ec", "redirectUris": ["https://ec.example.com/cb"], "encryptionKey": {{System.Text.Json.JsonSerializer.Serialize(InstanceKey.Ec().PublicJwk)}} },
              { "id": "oct", "redirectUris": ["https://oct.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } },
              // JWK members an instance's tooling writes are accepted: use, key_ops, kid.
              { "id": "oct-tooled", "redirectUris": ["https://oct2.example.com/cb"], "encryptionKey": { "kty": "oct", "k": "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "use": "enc", "key_ops": ["wrapKey", "unwrapKey"], "kid": "2026-12" } },
              // Comments and trailing commas are allowed: admins edit this file by hand.
              { "id": "login", "redirectUris": ["https://login.example.com/cb"], "deliverAccessToken": false, },
            ] }
            """;

        var (instances, errors) = AllowlistFile.Parse(Encoding.UTF8.GetBytes(json), DefaultScopes);

        errors.Should().BeEmpty();
        instances.Select(instance => instance.EncryptionKey?.Algorithm).Should().Equal("RSA-OAEP-256", "ECDH-ES+A256KW", "A256KW", "A256KW", null);
        instances.Single(instance => instance.Id == "oct").AllowedScopes.Should().BeEquivalentTo(DefaultScopes);
    }

    [Fact]
    public void Duplicate_ids_and_redirect_uris_across_instances_are_refused()
    {
        using var folder = new TempDirectory();
        var path = Path.Combine(folder.Path, "allow.json");
        File.WriteAllText(path, new AllowlistBuilder()
            .Add("same", ["https://a.example.com/cb"], null)
            .Add("SAME", ["https://b.example.com/cb"], null)
            .Add("other", ["https://A.example.com:443/cb"], null)
            .ToJson());

        var load = () => AllowlistFile.Load(path, DefaultScopes, [], DateTimeOffset.UnixEpoch);

        load.Should().Throw<AllowlistException>()
            .Which.Message.Should().Contain("\"SAME\" is used more than once").And.Contain("already registered for \"same\"");
    }

    [Fact]
    public void Missing_file_is_refused_naming_the_path_and_setting()
    {
        var load = () => AllowlistFile.Load("/nonexistent/allowed-redirects.json", DefaultScopes, [], DateTimeOffset.UnixEpoch);

        load.Should().Throw<AllowlistException>().WithMessage("*'/nonexistent/allowed-redirects.json' does not exist*Broker:AllowlistPath*");
    }
}
