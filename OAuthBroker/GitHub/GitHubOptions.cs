using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.Web;

namespace OAuthBroker.GitHub;

/// <summary>The GitHub OAuth App the broker holds (configuration section <c>GitHub</c>).</summary>
public sealed class GitHubOptions
{
    public const string Section = "GitHub";

    public const string DefaultScopeList = "read:user user:email";

    public string ClientId { get; set; } = "";

    public string ClientSecret { get; set; } = "";

    /// <summary>Web endpoints (authorize, access_token); https://HOST for GitHub Enterprise Server.</summary>
    public string BaseUrl { get; set; } = "https://github.com";

    /// <summary>REST API; https://HOST/api/v3 for GitHub Enterprise Server.</summary>
    public string ApiUrl { get; set; } = "https://api.github.com";

    public string Scopes { get; set; } = DefaultScopeList;

    /// <summary>How long one call to GitHub may take before the login fails with temporarily_unavailable.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public IReadOnlyList<string> DefaultScopes => Allowlist.Scopes.Split(Scopes);

    public string AuthorizeEndpoint => BaseUrl.TrimEnd('/') + "/login/oauth/authorize";

    public string TokenEndpoint => BaseUrl.TrimEnd('/') + "/login/oauth/access_token";

    public string UserEndpoint => ApiUrl.TrimEnd('/') + "/user";

    public string UserEmailsEndpoint => ApiUrl.TrimEnd('/') + "/user/emails";

    /// <summary>DELETE here with the app's Basic credentials revokes one token of this app.</summary>
    public string TokenRevocationEndpoint => ApiUrl.TrimEnd('/') + "/applications/" + Uri.EscapeDataString(ClientId) + "/token";
}

public sealed class GitHubOptionsValidator : IValidateOptions<GitHubOptions>
{
    public ValidateOptionsResult Validate(string? name, GitHubOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClientId))
        {
            errors.Add("GitHub:ClientId is required: the Client ID of your GitHub OAuth App (environment variable GitHub__ClientId), or start with --demo.");
        }

        if (string.IsNullOrWhiteSpace(options.ClientSecret))
        {
            errors.Add("GitHub:ClientSecret is required: a client secret of your GitHub OAuth App (environment variable GitHub__ClientSecret), or start with --demo.");
        }

        if (ConfiguredUrl.Check(options.BaseUrl) is { } baseError)
        {
            errors.Add($"GitHub:BaseUrl {baseError}.");
        }

        if (ConfiguredUrl.Check(options.ApiUrl) is { } apiError)
        {
            errors.Add($"GitHub:ApiUrl {apiError}.");
        }

        if (options.DefaultScopes.FirstOrDefault(scope => !Allowlist.Scopes.IsValid(scope)) is { } badScope)
        {
            errors.Add($"GitHub:Scopes has an invalid scope '{badScope}'.");
        }

        if (options.Timeout <= TimeSpan.Zero || options.Timeout > TimeSpan.FromMinutes(2))
        {
            errors.Add($"GitHub:Timeout must be between 00:00:00.001 and 00:02:00; it is {options.Timeout}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
