using System.Security.Cryptography;
using System.Text.Json;
using Jose;

namespace OAuthBroker.Tests.Support;

/// <summary>An instance's key pair: the public JWK goes in the allowlist, the private one stays with the "instance".</summary>
public sealed record InstanceKey(string Algorithm, Dictionary<string, object> PublicJwk, Dictionary<string, object> PrivateJwk, object DecryptionKey)
{
    public static InstanceKey Rsa(string algorithm = "RSA-OAEP-256", int bits = 2048)
    {
        var rsa = RSA.Create(bits);
        return new InstanceKey(algorithm, WithAlg(new Jwk(rsa, false).ToDictionary(), algorithm), WithAlg(new Jwk(rsa, true).ToDictionary(), algorithm), rsa);
    }

    public static InstanceKey Ec()
    {
        var ecdh = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        return new InstanceKey("ECDH-ES+A256KW", WithAlg(new Jwk(ecdh, false).ToDictionary(), "ECDH-ES+A256KW"), WithAlg(new Jwk(ecdh, true).ToDictionary(), "ECDH-ES+A256KW"), new Jwk(ecdh, true));
    }

    public static InstanceKey Oct(string algorithm = "A256KW")
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var jwk = WithAlg(new Jwk(secret).ToDictionary(), algorithm);
        return new InstanceKey(algorithm, jwk, jwk, secret);
    }

    public string PrivateJwkJson => JsonSerializer.Serialize(PrivateJwk);

    /// <summary>Decrypts a compact JWE with jose-jwt, pinning the algorithm this key was registered with.</summary>
    public string Decrypt(string jwe) => JWT.Decode(jwe, DecryptionKey, Algorithm, "A256GCM");

    private static Dictionary<string, object> WithAlg(IDictionary<string, object> jwk, string algorithm) =>
        new(jwk) { ["alg"] = algorithm };
}

/// <summary>Builds allowlist JSON files for tests.</summary>
public sealed class AllowlistBuilder
{
    private readonly List<Dictionary<string, object?>> instances = [];

    public AllowlistBuilder Add(string id, string[] redirectUris, InstanceKey? key, string[]? scopes = null, bool? requireState = null)
    {
        var entry = new Dictionary<string, object?> { ["id"] = id, ["redirectUris"] = redirectUris };
        if (requireState is { } required)
        {
            entry["requireState"] = required;
        }

        if (scopes is not null)
        {
            entry["scopes"] = scopes;
        }

        if (key is null)
        {
            entry["deliverAccessToken"] = false;
        }
        else
        {
            entry["encryptionKey"] = key.PublicJwk;
        }

        instances.Add(entry);
        return this;
    }

    public string ToJson() => JsonSerializer.Serialize(new { instances }, Indented);

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}

/// <summary>The allowlist most tests use: one instance per key type, a wildcard, a loopback and a login-only entry.</summary>
public sealed class StandardInstances
{
    public const string TrackeepCallback = "https://trackeep.example.com/auth/callback";

    public InstanceKey Trackeep { get; } = InstanceKey.Rsa();

    public InstanceKey RsaOaep { get; } = InstanceKey.Rsa("RSA-OAEP");

    public InstanceKey Tenants { get; } = InstanceKey.Ec();

    public InstanceKey Loopback { get; } = InstanceKey.Oct("A256KW");

    public InstanceKey Direct { get; } = InstanceKey.Oct("dir");

    public string Json => new AllowlistBuilder()
        .Add("trackeep-home", [TrackeepCallback], Trackeep, ["read:user", "user:email", "repo"])
        .Add("legacy-rsa", ["https://legacy.example.com/oauth/done"], RsaOaep)
        .Add("tenants", ["https://*.tenants.example.net/auth/callback"], Tenants)
        .Add("loopback-app", ["http://127.0.0.1/callback", "http://[::1]/callback"], Loopback)
        .Add("direct-app", ["https://direct.example.org/cb"], Direct)
        .Add("login-only", ["https://login-only.example.org/signed-in"], null, ["read:user"])
        .ToJson();

    public InstanceKey KeyFor(string instanceId) => instanceId switch
    {
        "trackeep-home" => Trackeep,
        "legacy-rsa" => RsaOaep,
        "tenants" => Tenants,
        "loopback-app" => Loopback,
        "direct-app" => Direct,
        _ => throw new ArgumentOutOfRangeException(nameof(instanceId)),
    };
}
