using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.GitHub;
using OAuthBroker.Lifecycle;
using OAuthBroker.Login;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;
using OAuthBroker.Users;

namespace OAuthBroker.Oidc;

/// <summary>
/// The OpenID Connect authorization-code flow's two halves that follow the GitHub login: a one-time code for the
/// client (256 bits, its SHA-256 stored, 60 seconds, bound to the client, the redirect URI and the PKCE challenge), and
/// its redemption at the token endpoint for an ID token, an access token for /oauth/userinfo and, for entries that
/// receive it, the GitHub token as a JWE to the instance and a refresh token for the relay.
/// </summary>
public sealed class OidcFlow(
    IAuthorizationCodeRepository codes, IUserStore users, SigningKeyStore keys, RefreshRelay relay, IDataProtectionProvider dataProtection, IOptions<BrokerOptions> broker, TimeProvider time)
    : IPurgeable
{
    public static readonly TimeSpan CodeLifetime = TimeSpan.FromSeconds(60);
    public const int MaxCodeLength = 128;

    /// <summary>Starts every refresh token the broker seals for an OpenID Connect client (GitHub's own start <c>ghr_</c>).</summary>
    public const string RefreshTokenPrefix = "obr_";
    public const int MaxRefreshTokenLength = 4096;
    private const string RefreshTokenPurpose = "OAuthBroker.Oidc.RefreshToken.v1";
    private const string StoredRefreshGrantPurpose = "OAuthBroker.Oidc.StoredRefreshGrant.v1";
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    public string Name => "authorization_codes";

    /// <summary>A code for <paramref name="login"/>'s client after GitHub said who the user is.</summary>
    public async Task<string> IssueCodeAsync(AllowlistInstance instance, BrokerUser user, GitHubToken token, PendingLogin login, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(token);
        ArgumentNullException.ThrowIfNull(login);
        var request = JsonSerializer.Deserialize(login.Request!, OidcJsonContext.Default.OidcRequest)!;
        var now = time.GetUtcNow();
        var code = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var codeHash = Hash(code);
        var grant = new CodeGrant(login.RedirectUri, request.CodeChallenge, Granted(instance, token, request.Scopes, request.Nonce, now.ToUnixTimeSeconds(), Base64Url.EncodeToString(codeHash)));
        await codes.InsertAsync(
            new AuthorizationCodeRow(codeHash, instance.Id, user.Id, JsonSerializer.Serialize(grant, OidcJsonContext.Default.CodeGrant), now.ToUnixTimeMilliseconds(), now.Add(CodeLifetime).ToUnixTimeMilliseconds(), null, null),
            cancellationToken);
        return code;
    }

    /// <summary>grant_type=authorization_code for an authenticated (or public) client: RFC 6749 section 4.1.3 and OpenID Connect Core 3.1.3.</summary>
    public async Task<RelayAnswer> RedeemAsync(AllowlistInstance instance, IFormCollection form, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(form);
        if (form["code"].Count != 1 || form["redirect_uri"].Count != 1 || form["code_verifier"].Count > 1)
        {
            return RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_request", "code and redirect_uri are required once; code_verifier at most once.");
        }

        var code = form["code"].ToString();
        var verifier = form["code_verifier"].Count == 1 ? form["code_verifier"].ToString() : null;
        if (code.Length is 0 or > MaxCodeLength || (verifier is not null && !IsVerifier(verifier)))
        {
            return RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_request", "code or code_verifier is malformed (a code_verifier is 43 to 128 unreserved characters).");
        }

        var hash = Hash(code);
        var redemption = await codes.RedeemAsync(hash, instance.Id, time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
        if (!redemption.Redeemed)
        {
            return redemption.Row is null
                ? RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_grant", "The code is unknown, expired, or was issued to another client.")
                : RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_grant", "The code has already been used; the tokens its first use issued are revoked.", outcome: "code_replayed");
        }

        var row = redemption.Row!;
        var grant = JsonSerializer.Deserialize(row.GrantJson, OidcJsonContext.Default.CodeGrant)!;
        // The code is spent whatever follows: a mismatch below is an attack or a broken client, and neither retries.
        if (!string.Equals(form["redirect_uri"].ToString(), grant.RedirectUri, StringComparison.Ordinal))
        {
            return RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_grant", "redirect_uri is not the one the code was issued for.", outcome: "redirect_uri_mismatch");
        }

        if (PkceFailure(grant.CodeChallenge, verifier) is { } pkce)
        {
            return RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_grant", pkce, outcome: "pkce_failed");
        }

        if (await users.FindAsync(row.UserId, cancellationToken) is not { } user)
        {
            return RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_grant", "The user of this code is no longer known to the broker.");
        }

        return new RelayAnswer(StatusCodes.Status200OK, Answer(instance, user, grant.Tokens), "succeeded", null, user.Login);
    }

    /// <summary>
    /// grant_type=refresh_token with a refresh token the broker sealed to this client: GitHub's refresh through the
    /// relay (single use, collapsed, bound to the client), answered as a token response (OpenID Connect Core 12.2)
    /// with a new sealed refresh token.
    /// </summary>
    public async Task<RelayAnswer> RefreshAsync(AllowlistInstance instance, string refreshToken, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        if (OpenRefreshToken(instance.Id, refreshToken) is not { } sealedGrant)
        {
            return RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_grant", "The refresh token is not one the broker issued to this client.", outcome: "not_its_token");
        }

        // RFC 6749 section 4.1.2: a replayed code revokes what it issued, and that includes the refresh chain.
        if (await IsRevokedAsync(sealedGrant.GrantId, cancellationToken))
        {
            return RefreshRelay.Error(StatusCodes.Status400BadRequest, "invalid_grant", "The authorization code of this sign-in was presented twice, which revoked its tokens: sign the user in again.", outcome: "code_replayed");
        }

        return await relay.RefreshAsync(instance, sealedGrant.GitHubRefreshToken,
            (user, token) => Answer(instance, user, Granted(instance, token, sealedGrant.Scopes, nonce: null, sealedGrant.AuthTime, sealedGrant.GrantId)), cancellationToken);
    }

    /// <summary>True when the code an access token came from was presented again after its redemption.</summary>
    public Task<bool> IsRevokedAsync(string grantId, CancellationToken cancellationToken)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        return grantId.Length == 43 && Base64Url.TryDecodeFromChars(grantId, hash, out var written) && written == hash.Length
            ? codes.IsReplayedAsync(hash.ToArray(), cancellationToken)
            : Task.FromResult(true);
    }

    public Task<int> PurgeAsync(CancellationToken cancellationToken)
    {
        // Kept as long as an access token from the code may live, so that a late replay still revokes it; a replayed
        // code as long as a refresh token from it may, so that its refresh chain stays revoked.
        var now = time.GetUtcNow();
        return codes.DeleteEndedAsync(
            now.Subtract(broker.Value.TokenLifetime).Subtract(CodeLifetime).ToUnixTimeMilliseconds(), now.Subtract(RefreshRelay.DefaultRefreshLifetime).ToUnixTimeMilliseconds(), cancellationToken);
    }

    public static byte[] Hash(string code) => SHA256.HashData(Encoding.UTF8.GetBytes(code));

    /// <summary>The scope values the broker understands, as the client may ask for them.</summary>
    public static string ScopeString(IEnumerable<string> oidcScopes, string gitHubScope) =>
        string.Join(' ', oidcScopes.Concat(Allowlist.Scopes.Split(gitHubScope).Select(scope => OidcEndpoints.GitHubScopePrefix + scope)));

    /// <summary>What a token response will carry of the GitHub token: the JWE to the instance, and GitHub's refresh token sealed for storage.</summary>
    private GrantedTokens Granted(AllowlistInstance instance, GitHubToken token, IReadOnlyList<string> scopes, string? nonce, long authTime, string grantId) => new(
        scopes, token.Scope, nonce, authTime, grantId,
        instance.EncryptionKey is { } key ? InstanceTokenEncryptor.Encrypt(token.AccessToken, key) : null,
        token.ExpiresAt?.ToUnixTimeSeconds(),
        instance.Refresh && token.RefreshToken is { } refreshToken
            ? dataProtection.CreateProtector(StoredRefreshGrantPurpose).Protect(JsonSerializer.Serialize(new OidcRefreshGrant(refreshToken, scopes, authTime, grantId), OidcJsonContext.Default.OidcRefreshGrant))
            : null);

    // The client's refresh token is opaque to it, and it sends it back as it is (what every OAuth client library does);
    // only the broker reads it, and only for the client it was sealed to. It is made at the answer and stored nowhere
    // (a code's row keeps the grant under another purpose, which is no token), and the relay's record of GitHub's
    // refresh token still decides whether it is unused, unexpired and this client's.
    private string RefreshTokenFor(string clientId, string storedGrant) =>
        RefreshTokenPrefix + dataProtection.CreateProtector(RefreshTokenPurpose, clientId).Protect(dataProtection.CreateProtector(StoredRefreshGrantPurpose).Unprotect(storedGrant));

    private OidcRefreshGrant? OpenRefreshToken(string clientId, string value)
    {
        if (!value.StartsWith(RefreshTokenPrefix, StringComparison.Ordinal) || value.Length > MaxRefreshTokenLength)
        {
            return null;
        }

        try
        {
            var grant = JsonSerializer.Deserialize(dataProtection.CreateProtector(RefreshTokenPurpose, clientId).Unprotect(value[RefreshTokenPrefix.Length..]), OidcJsonContext.Default.OidcRefreshGrant);
            return grant is not null && GitHubClient.IsUsableToken(grant.GitHubRefreshToken) ? grant : null;
        }
        catch (Exception exception) when (exception is CryptographicException or FormatException)
        {
            // Tampered with, sealed to another client, or from a key ring the broker no longer has.
            return null;
        }
    }

    private string Answer(AllowlistInstance instance, BrokerUser user, GrantedTokens grant) =>
        JsonSerializer.Serialize(Issue(instance, user, grant), OidcJsonContext.Default.OidcTokenResponse);

    private OidcTokenResponse Issue(AllowlistInstance instance, BrokerUser user, GrantedTokens grant)
    {
        var now = time.GetUtcNow();
        var lifetime = broker.Value.TokenLifetime;
        var issuer = broker.Value.Issuer;
        var signingKey = keys.Active;
        var credentials = new SigningCredentials(signingKey.SecurityKey, signingKey.Algorithm);
        var subject = user.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var scope = ScopeString(grant.Scopes, grant.GitHubScope);
        // RFC 9068: typed at+jwt, addressed to the broker, naming the client; "grant" ties it (and every refresh's) to
        // its code for revocation.
        var accessToken = Handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = issuer,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = now.Add(lifetime).UtcDateTime,
            TokenType = "at+jwt",
            Claims = new Dictionary<string, object>
            {
                [JwtRegisteredClaimNames.Sub] = subject,
                [JwtRegisteredClaimNames.Jti] = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16)),
                ["client_id"] = instance.Id,
                ["scope"] = scope,
                ["grant"] = grant.GrantId,
            },
            SigningCredentials = credentials,
        });

        string? idToken = null;
        if (grant.Scopes.Contains(OidcEndpoints.OpenId))
        {
            var claims = new Dictionary<string, object>
            {
                [JwtRegisteredClaimNames.Sub] = subject,
                [JwtRegisteredClaimNames.AuthTime] = grant.AuthTime,
                [JwtRegisteredClaimNames.AtHash] = AtHash(accessToken, signingKey.Algorithm),
            };
            if (grant.Nonce is { } nonce)
            {
                claims[JwtRegisteredClaimNames.Nonce] = nonce;
            }

            foreach (var (name, value) in ProfileClaims(user, grant.Scopes))
            {
                claims[name] = value;
            }

            idToken = Handler.CreateToken(new SecurityTokenDescriptor
            {
                Issuer = issuer,
                Audience = instance.Id,
                IssuedAt = now.UtcDateTime,
                Expires = now.Add(lifetime).UtcDateTime,
                TokenType = "JWT",
                Claims = claims,
                SigningCredentials = credentials,
            });
        }

        return new OidcTokenResponse(
            accessToken, "Bearer", (long)lifetime.TotalSeconds, scope, idToken, grant.GitHubAccessTokenJwe, grant.GitHubAccessTokenJwe is null ? null : grant.GitHubExpiresAt,
            grant.SealedRefreshGrant is { } stored ? RefreshTokenFor(instance.Id, stored) : null);
    }

    /// <summary>The user's claims by scope (OpenID Connect Core 5.4), for the ID token and /oauth/userinfo.</summary>
    public static IEnumerable<KeyValuePair<string, object>> ProfileClaims(BrokerUser user, IReadOnlyCollection<string> scopes)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(scopes);
        if (scopes.Contains(OidcEndpoints.Profile))
        {
            yield return new("preferred_username", user.Login);
            yield return new("github_id", user.GitHubId);
            if (user.Name is { } name)
            {
                yield return new("name", name);
            }

            if (user.AvatarUrl is { } picture)
            {
                yield return new("picture", picture);
            }
        }

        // GitHub shows only a verified address as the public one, and the broker reads the primary verified one otherwise.
        if (scopes.Contains(OidcEndpoints.Email) && user.Email is { } email)
        {
            yield return new("email", email);
            yield return new("email_verified", true);
        }
    }

    /// <summary>OpenID Connect Core 3.1.3.6: the left half of the access token's hash, with the ID token's hash function.</summary>
    private static string AtHash(string accessToken, string algorithm)
    {
        var bytes = Encoding.ASCII.GetBytes(accessToken);
        var hash = algorithm.EndsWith("384", StringComparison.Ordinal) ? SHA384.HashData(bytes)
            : algorithm.EndsWith("512", StringComparison.Ordinal) ? SHA512.HashData(bytes)
            : SHA256.HashData(bytes);
        return Base64Url.EncodeToString(hash.AsSpan(0, hash.Length / 2));
    }

    /// <summary>
    /// RFC 7636 with S256 only; a verifier without a challenge is refused too (RFC 9700 section 2.1.1: no PKCE
    /// downgrade), and so is a challenge without a verifier.
    /// </summary>
    private static string? PkceFailure(string? challenge, string? verifier)
    {
        if (challenge is null)
        {
            return verifier is null ? null : "code_verifier was sent, and the authorization request had no code_challenge.";
        }

        if (verifier is null)
        {
            return "code_verifier is required: the authorization request had a code_challenge.";
        }

        var computed = PendingLoginStore.S256Challenge(verifier);
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(computed), Encoding.ASCII.GetBytes(challenge)) ? null : "code_verifier does not match the code_challenge.";
    }

    private static bool IsVerifier(string value) =>
        value.Length is >= 43 and <= 128 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~');
}
