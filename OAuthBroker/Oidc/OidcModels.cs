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
/// What a code's redemption answers, kept with the code's hash for its 60 seconds. The GitHub token is present only
/// as the JWE to the instance, which the broker cannot read.
/// </summary>
public sealed record CodeGrant(
    [property: JsonPropertyName("redirect_uri")] string RedirectUri,
    [property: JsonPropertyName("scopes")] IReadOnlyList<string> Scopes,
    [property: JsonPropertyName("github_scope")] string GitHubScope,
    [property: JsonPropertyName("nonce")] string? Nonce,
    [property: JsonPropertyName("code_challenge")] string? CodeChallenge,
    [property: JsonPropertyName("auth_time")] long AuthTime,
    [property: JsonPropertyName("github_access_token")] string? GitHubAccessTokenJwe,
    [property: JsonPropertyName("github_expires_at")] long? GitHubExpiresAt)
{
    public override string ToString() => $"CodeGrant {{ RedirectUri = {RedirectUri} }}";
}

/// <summary>The token endpoint's answer to an authorization code (OpenID Connect Core section 3.1.3.3).</summary>
public sealed record OidcTokenResponse(
    [property: JsonPropertyName("access_token")] string AccessToken,
    [property: JsonPropertyName("token_type")] string TokenType,
    [property: JsonPropertyName("expires_in")] long ExpiresIn,
    [property: JsonPropertyName("scope")] string Scope,
    [property: JsonPropertyName("id_token"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? IdToken,
    [property: JsonPropertyName("github_access_token"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? GitHubAccessToken,
    [property: JsonPropertyName("github_access_token_expires_at"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? GitHubAccessTokenExpiresAt)
{
    public override string ToString() => $"OidcTokenResponse {{ Scope = {Scope} }}";
}

[JsonSerializable(typeof(OidcRequest))]
[JsonSerializable(typeof(CodeGrant))]
[JsonSerializable(typeof(OidcTokenResponse))]
[JsonSerializable(typeof(Dictionary<string, object>))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(long))]
internal sealed partial class OidcJsonContext : JsonSerializerContext;
