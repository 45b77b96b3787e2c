using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.Web;

namespace OAuthBroker.GitHub;

/// <summary>The names an instance entry's <c>provider</c> takes: which of the broker's two GitHub integrations signs its users in.</summary>
public static class GitHubProviders
{
    public const string OAuthApp = "oauth-app";
    public const string GitHubApp = "github-app";

    public static readonly IReadOnlyList<string> All = [OAuthApp, GitHubApp];
}

/// <summary>
/// One GitHub integration the broker holds: its client credentials and where its GitHub lives (github.com, or a
/// GitHub Enterprise Server). The OAuth App (<see cref="GitHubOptions"/>) and the GitHub App
/// (<see cref="GitHubAppOptions"/>) take the same calls: authorize, code exchange, refresh, revocation, user look-ups.
/// </summary>
public abstract class GitHubIntegrationOptions
{
    public string ClientId { get; set; } = "";

    public string ClientSecret { get; set; } = "";

    /// <summary>Web endpoints (authorize, access_token); https://HOST for GitHub Enterprise Server.</summary>
    public string BaseUrl { get; set; } = "https://github.com";

    /// <summary>REST API; https://HOST/api/v3 for GitHub Enterprise Server.</summary>
    public string ApiUrl { get; set; } = "https://api.github.com";

    /// <summary>The entry's <c>provider</c> value that selects this integration, and the JWT's <c>provider</c> claim.</summary>
    public abstract string Provider { get; }

    /// <summary>
    /// Whether the authorize request carries <c>scope</c>: a GitHub App's reach is set by its permissions, and GitHub
    /// ignores the parameter for it.
    /// </summary>
    public abstract bool UsesScopes { get; }

    public string AuthorizeEndpoint => BaseUrl.TrimEnd('/') + "/login/oauth/authorize";

    public string TokenEndpoint => BaseUrl.TrimEnd('/') + "/login/oauth/access_token";

    public string UserEndpoint => ApiUrl.TrimEnd('/') + "/user";

    public string UserEmailsEndpoint => ApiUrl.TrimEnd('/') + "/user/emails";

    /// <summary>DELETE here with the app's Basic credentials revokes one token of this app.</summary>
    public string TokenRevocationEndpoint => ApiUrl.TrimEnd('/') + "/applications/" + Uri.EscapeDataString(ClientId) + "/token";

    /// <summary>DELETE here with the app's Basic credentials revokes a user's whole authorization of this app: every token.</summary>
    public string GrantRevocationEndpoint => ApiUrl.TrimEnd('/') + "/applications/" + Uri.EscapeDataString(ClientId) + "/grant";

    /// <summary>Where a user reviews (and revokes) this app's access on GitHub.</summary>
    public string ConnectionSettingsPage => BaseUrl.TrimEnd('/') + "/settings/connections/applications/" + Uri.EscapeDataString(ClientId);

    /// <summary>The problems of the credentials and URLs, each naming <paramref name="section"/>'s key.</summary>
    internal void CheckCommon(string section, string kind, string orElse, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(ClientId))
        {
            errors.Add($"{section}:ClientId is required: the Client ID of your {kind} (environment variable {section}__ClientId){orElse}.");
        }

        if (string.IsNullOrWhiteSpace(ClientSecret))
        {
            errors.Add($"{section}:ClientSecret is required: a client secret of your {kind} (environment variable {section}__ClientSecret){orElse}.");
        }

        if (ConfiguredUrl.Check(BaseUrl) is { } baseError)
        {
            errors.Add($"{section}:BaseUrl {baseError}.");
        }

        if (ConfiguredUrl.Check(ApiUrl) is { } apiError)
        {
            errors.Add($"{section}:ApiUrl {apiError}.");
        }
    }
}

/// <summary>The GitHub OAuth App the broker holds (configuration section <c>GitHub</c>); it also signs admins in.</summary>
public sealed class GitHubOptions : GitHubIntegrationOptions
{
    public const string Section = "GitHub";

    public const string DefaultScopeList = "read:user user:email";

    public string Scopes { get; set; } = DefaultScopeList;

    /// <summary>How long one call to GitHub may take before the login fails with temporarily_unavailable (both integrations).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public IReadOnlyList<string> DefaultScopes => Allowlist.Scopes.Split(Scopes);

    public override string Provider => GitHubProviders.OAuthApp;

    public override bool UsesScopes => true;
}

/// <summary>
/// The GitHub App the broker may hold besides its OAuth App (configuration section <c>GitHubApp</c>, optional):
/// entries with <c>"provider": "github-app"</c> sign their users in through it and receive its expiring user tokens.
/// </summary>
public sealed partial class GitHubAppOptions : GitHubIntegrationOptions
{
    public const string Section = "GitHubApp";

    /// <summary>The app's URL name (github.com/apps/SLUG), for its public and installation pages.</summary>
    public string Slug { get; set; } = "";

    /// <summary>The app's webhook secret: <c>POST /webhooks/github</c> accepts only deliveries signed with it; empty: no webhooks.</summary>
    public string WebhookSecret { get; set; } = "";

    /// <summary>A webhook secret shorter than this is refused at start-up: GitHub signs with it, and anyone who guesses it can forge events.</summary>
    public const int MinWebhookSecretLength = 16;

    /// <summary>The page where an account installs the app, or changes an installation's repositories.</summary>
    public string? InstallationPage => Slug.Length == 0 ? null : BaseUrl.TrimEnd('/') + "/apps/" + Slug + "/installations/new";

    public override string Provider => GitHubProviders.GitHubApp;

    public override bool UsesScopes => false;

    /// <summary>False when the section is absent: the broker then serves OAuth App entries only.</summary>
    public bool IsConfigured => ClientId.Length > 0 || ClientSecret.Length > 0;

    public string? PublicPage => Slug.Length == 0 ? null : BaseUrl.TrimEnd('/') + "/apps/" + Slug;

    [GeneratedRegex("^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$", RegexOptions.CultureInvariant)]
    public static partial Regex SlugPattern();

    internal void Check(List<string> errors)
    {
        CheckCommon(Section, "GitHub App", "", errors);
        if (Slug.Length > 0 && !SlugPattern().IsMatch(Slug))
        {
            errors.Add($"{Section}:Slug must be the app's URL name (github.com/apps/SLUG): lower-case letters, digits and '-'.");
        }

        if (WebhookSecret.Length is > 0 and < MinWebhookSecretLength)
        {
            errors.Add($"{Section}:WebhookSecret must be at least {MinWebhookSecretLength} characters (a random one: `openssl rand -hex 32`), or empty for no webhooks.");
        }
    }
}

public sealed class GitHubOptionsValidator : IValidateOptions<GitHubOptions>, IValidateOptions<GitHubAppOptions>
{
    public ValidateOptionsResult Validate(string? name, GitHubOptions options)
    {
        var errors = new List<string>();
        // The OAuth App is not optional (it also signs admins in); the demo is the way to run without one.
        options.CheckCommon(GitHubOptions.Section, "GitHub OAuth App", ", or start with --demo", errors);

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

    public ValidateOptionsResult Validate(string? name, GitHubAppOptions options)
    {
        if (!options.IsConfigured)
        {
            return ValidateOptionsResult.Success;
        }

        var errors = new List<string>();
        options.Check(errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Picks the integration an instance signs in through.</summary>
public sealed class GitHubIntegrations(IOptions<GitHubOptions> oauthApp, IOptions<GitHubAppOptions> gitHubApp)
{
    public GitHubOptions OAuthApp => oauthApp.Value;

    /// <summary>The GitHub App, or null when the broker has none (no <c>GitHubApp</c> section).</summary>
    public GitHubAppOptions? GitHubApp => gitHubApp.Value.IsConfigured ? gitHubApp.Value : null;

    /// <summary>The integration of <paramref name="instance"/>'s entry; null for a GitHub App entry on a broker without one.</summary>
    public GitHubIntegrationOptions? For(AllowlistInstance instance) =>
        instance.Provider == GitHubProviders.GitHubApp ? GitHubApp : OAuthApp;

    /// <summary>What an instance's user is told when its entry names a GitHub App the broker does not have.</summary>
    public const string MissingGitHubApp = "This application is set to sign in through the broker's GitHub App, and this broker has no GitHub App configured (GitHubApp section); tell the broker's administrator.";
}
