using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace OAuthBroker.Admin;

/// <summary>Who may administer the broker (configuration section <c>Admin</c>). With neither set, /admin does not exist.</summary>
public sealed class AdminOptions
{
    public const string Section = "Admin";
    private const string HashPrefix = "sha256:";

    /// <summary>GitHub user ids that may sign in to /admin: an id never changes hands, unlike a login.</summary>
    public long[] GitHubIds { get; set; } = [];

    /// <summary>
    /// GitHub logins that may sign in to /admin; each is pinned to the id it first signs in with (prefer
    /// <see cref="GitHubIds"/>).
    /// </summary>
    public string[] GitHubLogins { get; set; } = [];

    /// <summary>A bearer token for automation: the token itself, or <c>sha256:&lt;hex&gt;</c> of it so the plain token need not be kept in configuration.</summary>
    public string? ApiToken { get; set; }

    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);

    public bool Enabled => SignInEnabled || !string.IsNullOrEmpty(ApiToken);

    public bool SignInEnabled => GitHubIds.Length > 0 || GitHubLogins.Length > 0;

    /// <summary>SHA-256 of the API token, whichever way it was configured; null when there is none.</summary>
    public byte[]? ApiTokenHash => string.IsNullOrEmpty(ApiToken) ? null
        : ApiToken.StartsWith(HashPrefix, StringComparison.Ordinal) ? Convert.FromHexString(ApiToken[HashPrefix.Length..])
        : SHA256.HashData(Encoding.UTF8.GetBytes(ApiToken));

    /// <summary>Named by id, or by a login whose pin (checked by the caller) is this id.</summary>
    public bool Names(AdminIdentity admin, out bool byLogin)
    {
        var byId = GitHubIds.Contains(admin.GitHubId);
        byLogin = !byId && GitHubLogins.Contains(admin.Login, StringComparer.OrdinalIgnoreCase);
        return byId || byLogin;
    }
}

public sealed class AdminOptionsValidator : IValidateOptions<AdminOptions>
{
    public ValidateOptionsResult Validate(string? name, AdminOptions options)
    {
        var errors = new List<string>();
        var token = options.ApiToken;
        if (!string.IsNullOrEmpty(token))
        {
            if (token.StartsWith("sha256:", StringComparison.Ordinal))
            {
                if (token.Length != 7 + 64 || !token[7..].All(Uri.IsHexDigit))
                {
                    errors.Add("Admin:ApiToken 'sha256:' must be followed by the 64 hex digits of the token's SHA-256.");
                }
            }
            else if (token.Length < 32)
            {
                errors.Add("Admin:ApiToken must be at least 32 characters (for example: openssl rand -hex 32), or sha256:<hex> of such a token.");
            }
        }

        if (options.GitHubIds.Any(id => id <= 0))
        {
            errors.Add("Admin:GitHubIds must list GitHub user ids (positive numbers; GET /users/LOGIN shows a user's id).");
        }

        if (options.GitHubLogins.Any(login => string.IsNullOrWhiteSpace(login) || login.Length > 100))
        {
            errors.Add("Admin:GitHubLogins must list GitHub logins.");
        }

        if (options.SessionLifetime < TimeSpan.FromMinutes(5) || options.SessionLifetime > TimeSpan.FromDays(7))
        {
            errors.Add("Admin:SessionLifetime must be between 00:05:00 and 7.00:00:00.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
