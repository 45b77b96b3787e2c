using System.Text.Json.Serialization;

namespace OAuthBroker.Oidc;

/// <summary>
/// What an OpenID Connect client asked for at /oauth/authorize, kept with the pending login (no secret: the nonce and
/// the PKCE challenge are public values).
/// </summary>
public sealed record OidcRequest(
    [property: JsonPropertyName("scopes")] IReadOnlyList<string> Scopes,
    [property: JsonPropertyName("nonce")] string? Nonce,
    [property: JsonPropertyName("code_challenge")] string? CodeChallenge);

/// <summary>
/// What a code's redemption answers, kept with the code's hash for its 60 seconds: where it may go
/// (<see cref="RedirectUri"/>, <see cref="CodeChallenge"/>) and what it grants (<see cref="Tokens"/>).
/// </summary>
public sealed record CodeGrant(
    [property: JsonPropertyName("redirect_uri")] string RedirectUri,
    [property: JsonPropertyName("code_challenge")] string? CodeChallenge,
    [property: JsonPropertyName("tokens")] GrantedTokens Tokens)
{
    public override string ToString() => $"CodeGrant {{ RedirectUri = {RedirectUri} }}";
}

/// <summary>
/// What a token response is made from besides the user: kept with a code, or rebuilt at a refresh. The GitHub
/// tokens are present only as the JWE to the instance (which the broker cannot read) and as the refresh grant sealed
/// for storage, which is not the client's refresh token: that one is sealed anew, to the client, at each answer.
/// </summary>
public sealed record GrantedTokens(
    [property: JsonPropertyName("scopes")] IReadOnlyList<string> Scopes,
    [property: JsonPropertyName("github_scope")] string GitHubScope,
    [property: JsonPropertyName("nonce")] string? Nonce,
    [property: JsonPropertyName("auth_time")] long AuthTime,
    [property: JsonPropertyName("grant")] string GrantId,
    [property: JsonPropertyName("github_access_token")] string? GitHubAccessTokenJwe,
    [property: JsonPropertyName("github_expires_at")] long? GitHubExpiresAt,
    [property: JsonPropertyName("refresh_grant")] string? SealedRefreshGrant)
{
    public override string ToString() => $"GrantedTokens {{ GrantId = {GrantId} }}";
}

/// <summary>
/// What an OpenID Connect client's refresh token carries, sealed to that client with the broker's key ring: GitHub's
/// refresh token and what the refreshed token response repeats (scopes, the original sign-in's time, the code's grant).
/// </summary>
public sealed record OidcRefreshGrant(
    [property: JsonPropertyName("rt")] string GitHubRefreshToken,
    [property: JsonPropertyName("scopes")] IReadOnlyList<string> Scopes,
    [property: JsonPropertyName("auth_time")] long AuthTime,
    [property: JsonPropertyName("grant")] string GrantId)
{
    public override string ToString() => $"OidcRefreshGrant {{ GrantId = {GrantId} }}";
}

/// <summary>The token endpoint's answer to an authorization code or an OpenID Connect client's refresh (OpenID Connect Core 3.1.3.3, 12.2).</summary>
public sealed record OidcTokenResponse(
    [property: JsonPropertyName("access_token")] string AccessToken,
    [property: JsonPropertyName("token_type")] string TokenType,
    [property: JsonPropertyName("expires_in")] long ExpiresIn,
    [property: JsonPropertyName("scope")] string Scope,
    [property: JsonPropertyName("id_token"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? IdToken,
    [property: JsonPropertyName("github_access_token"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? GitHubAccessToken,
    [property: JsonPropertyName("github_access_token_expires_at"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? GitHubAccessTokenExpiresAt,
    [property: JsonPropertyName("refresh_token"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? RefreshToken)
{
    public override string ToString() => $"OidcTokenResponse {{ Scope = {Scope} }}";
}

[JsonSerializable(typeof(OidcRequest))]
[JsonSerializable(typeof(CodeGrant))]
[JsonSerializable(typeof(OidcRefreshGrant))]
[JsonSerializable(typeof(OidcTokenResponse))]
[JsonSerializable(typeof(Dictionary<string, object>))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(long))]
internal sealed partial class OidcJsonContext : JsonSerializerContext;
