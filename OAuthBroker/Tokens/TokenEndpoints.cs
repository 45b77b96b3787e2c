using System.Security.Cryptography;
using Jose;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.KeyRing;
using OAuthBroker.Storage;
using OAuthBroker.Web;

namespace OAuthBroker.Tokens;

public static class TokenEndpoints
{
    /// <summary>How long instances may cache the JWKS; a new key is published at least this long before it signs.</summary>
    public static readonly TimeSpan JwksCacheLifetime = TimeSpan.FromMinutes(5);

    private static readonly string[] ResponseModes = Login.InstanceResponse.Modes;
    private static readonly string[] EncryptionAlgorithms = ["RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "A256KW", "dir"];
    private static readonly string[] ContentEncryptions = [InstanceTokenEncryptor.ContentEncryption];
    private static readonly string[] GrantTypes = ["authorization_code", "refresh_token"];
    private static readonly string[] ResponseTypes = ["code"];
    private static readonly string[] ChallengeMethods = ["S256"];

    public static IServiceCollection AddTokens(this IServiceCollection services)
    {
        services.AddKeyRing();
        services.AddStore<ISigningKeyRepository, SqliteSigningKeyRepository, PostgresSigningKeyRepository>();
        services.AddSingleton<SigningKeyStore>();
        services.AddSingleton<BrokerTokenIssuer>();
        services.AddSingleton<BrokerTokenValidator>();
        services.AddHostedService<SigningKeyRefresher>();
        return services;
    }

    public static IEndpointRouteBuilder MapTokens(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/.well-known").WithTags("Discovery");
        group.MapGet("/jwks.json", GetJwks);
        group.MapGet("/oauth-authorization-server", GetMetadata);
        return endpoints;
    }

    /// <summary>The public halves of every key whose signatures are honoured, so instances can verify across a rotation.</summary>
    public static JsonHttpResult<Dictionary<string, object>> GetJwks(HttpContext context, SigningKeyStore keys)
    {
        var set = keys.Keys.Select(key =>
        {
            var jwk = key.SecurityKey switch
            {
                Microsoft.IdentityModel.Tokens.ECDsaSecurityKey ec => new Jwk(ec.ECDsa, isPrivate: false),
                Microsoft.IdentityModel.Tokens.RsaSecurityKey rsa => new Jwk(rsa.Rsa, isPrivate: false),
                _ => throw new CryptographicException("Unsupported signing key type."),
            };
            var members = jwk.ToDictionary();
            members["kid"] = key.KeyId;
            members["use"] = "sig";
            members["alg"] = key.Algorithm;
            return members;
        }).ToList();
        context.Response.Headers.CacheControl = $"public, max-age={JwksCacheLifetime.TotalSeconds:0}";
        return TypedResults.Json(new Dictionary<string, object> { ["keys"] = set }, BrokerJsonContext.Default.DictionaryStringObject);
    }

    /// <summary>
    /// RFC 8414 metadata that claims nothing the broker does not do: the OpenID Connect face's authorization-code flow
    /// (the same endpoints as the OpenID Connect discovery document; implicit is not offered) and the refresh relay.
    /// The Trackeep-style start endpoint <c>/auth/github</c> is no RFC 6749 authorization endpoint and is not listed.
    /// The <c>token_</c> and <c>access_token_encryption_</c> members are the broker's own: no registered name describes
    /// the JWT it hands back or the JWE inside it.
    /// </summary>
    public static Ok<Dictionary<string, object>> GetMetadata(IOptions<BrokerOptions> broker, IOptions<GitHubOptions> gitHub, AllowlistProvider allowlist)
    {
        var issuer = broker.Value.Issuer;
        var scopes = gitHub.Value.DefaultScopes.Concat(allowlist.Current.Instances.Values.SelectMany(instance => instance.AllowedScopes)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        return TypedResults.Ok(new Dictionary<string, object>
        {
            ["issuer"] = issuer,
            ["authorization_endpoint"] = issuer + "/oauth/authorize",
            ["jwks_uri"] = issuer + "/.well-known/jwks.json",
            ["userinfo_endpoint"] = issuer + "/oauth/userinfo",
            ["token_endpoint"] = issuer + "/oauth/token",
            ["token_endpoint_auth_methods_supported"] = Lifecycle.ClientAuthenticator.Methods.Append("none").ToArray(),
            ["token_endpoint_auth_signing_alg_values_supported"] = Lifecycle.ClientKey.Algorithms,
            ["revocation_endpoint"] = issuer + "/oauth/revoke",
            ["revocation_endpoint_auth_methods_supported"] = Lifecycle.ClientAuthenticator.Methods,
            ["revocation_endpoint_auth_signing_alg_values_supported"] = Lifecycle.ClientKey.Algorithms,
            ["response_types_supported"] = ResponseTypes,
            ["code_challenge_methods_supported"] = ChallengeMethods,
            ["grant_types_supported"] = GrantTypes,
            ["response_modes_supported"] = ResponseModes,
            ["authorization_response_iss_parameter_supported"] = true,
            ["scopes_supported"] = scopes.ToArray(),
            ["token_signing_alg_values_supported"] = new[] { broker.Value.SigningAlgorithm },
            ["access_token_encryption_alg_values_supported"] = EncryptionAlgorithms,
            ["access_token_encryption_enc_values_supported"] = ContentEncryptions,
        });
    }
}
