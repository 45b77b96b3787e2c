namespace OAuthBroker.GitHub;

/// <summary>
/// What GitHub granted. <see cref="AccessToken"/> and <see cref="RefreshToken"/> are secrets: never log them, never
/// store them in plain text. An expiring token (GitHub App user tokens, OAuth Apps that opted in) has an expiry and,
/// usually, a single-use refresh token.
/// </summary>
public sealed record GitHubToken(string AccessToken, string TokenType, string Scope, DateTimeOffset? ExpiresAt)
{
    public string? RefreshToken { get; init; }

    public DateTimeOffset? RefreshTokenExpiresAt { get; init; }

    // Keeps the tokens out of anything that prints a record (logs, test failure messages, debugger).
    public override string ToString() => $"GitHubToken {{ TokenType = {TokenType}, Scope = {Scope}, ExpiresAt = {ExpiresAt}, Refreshable = {RefreshToken is not null} }}";
}

public sealed record GitHubUser(long Id, string Login, string? Name, string? Email, string? AvatarUrl);

public enum GitHubFailureKind
{
    /// <summary>Unreachable, timed out, 5xx or rate limited: worth trying again later.</summary>
    Unavailable,

    /// <summary>GitHub answered with an OAuth error (for example bad_verification_code, with HTTP 200).</summary>
    Rejected,

    /// <summary>An answer we cannot use: wrong status, malformed JSON, missing fields.</summary>
    Malformed,
}

/// <summary>Why a call to GitHub failed, in words safe to log and to show (never a token or secret).</summary>
public sealed record GitHubFailure(GitHubFailureKind Kind, string Reason)
{
    /// <summary>GitHub's own error code when it answered one (for example bad_refresh_token); null otherwise.</summary>
    public string? Code { get; init; }

    /// <summary>The OAuth error code (RFC 6749 section 4.1.2.1) the instance receives.</summary>
    public string OAuthError => Kind == GitHubFailureKind.Unavailable ? "temporarily_unavailable" : "server_error";
}

/// <summary>A value or a failure: expected GitHub problems are results, not exceptions.</summary>
public readonly record struct GitHubResult<T>(T? Value, GitHubFailure? Failure)
    where T : class
{
    public static implicit operator GitHubResult<T>(T value) => new(value, null);

    public static implicit operator GitHubResult<T>(GitHubFailure failure) => new(null, failure);
}

/// <summary>An installation of the broker's GitHub App that a user's token reaches, and the account it is installed on.</summary>
public sealed record GitHubInstallation(long Id, string? AccountLogin);
