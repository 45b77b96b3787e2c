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

    private static readonly string[] EncryptionAlgorithms = ["RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "A256KW", "dir"];
    private static readonly string[] ContentEncryptions = [InstanceTokenEncryptor.ContentEncryption];

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
    /// RFC 8414 metadata that claims nothing the broker does not do: the OpenID Connect discovery document (the
    /// authorization-code flow, no implicit; the refresh relay) and the broker's own members.
    /// The Trackeep-style start endpoint <c>/auth/github</c> is no RFC 6749 authorization endpoint and is not listed.
    /// The <c>token_</c> and <c>access_token_encryption_</c> members are the broker's own: no registered name describes
    /// the JWT it hands back or the JWE inside it.
    /// </summary>
    public static Ok<Dictionary<string, object>> GetMetadata(IOptions<BrokerOptions> broker, GitHub.GitHubIntegrations gitHub, AllowlistProvider allowlist)
    {
        var metadata = Oidc.OidcEndpoints.ProviderMetadata(broker.Value, gitHub, allowlist.Current);
        metadata["token_signing_alg_values_supported"] = new[] { broker.Value.SigningAlgorithm };
        metadata["access_token_encryption_alg_values_supported"] = EncryptionAlgorithms;
        metadata["access_token_encryption_enc_values_supported"] = ContentEncryptions;
        // The broker's own pages an instance sends a user to: the GitHub App's install relay, and the organisation-access help.
        if (gitHub.GitHubApp?.InstallationPage is not null)
        {
            metadata["github_app_installation_endpoint"] = broker.Value.Issuer + "/auth/github/install";
        }

        metadata["github_org_access_endpoint"] = broker.Value.Issuer + Login.OrgAccessPage.Path;
        return TypedResults.Ok(metadata);
    }
}
