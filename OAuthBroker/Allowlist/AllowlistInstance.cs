using System.Collections.Frozen;

namespace OAuthBroker.Allowlist;

/// <summary>One instance the broker serves: its JWT audience, where it may be redirected, what it may ask for.</summary>
public sealed record AllowlistInstance(
    string Id,
    IReadOnlyList<RedirectUri> RedirectUris,
    FrozenSet<string> AllowedScopes,
    InstanceEncryptionKey? EncryptionKey)
{
    /// <summary>False for identity-only instances, which get a JWT without a GitHub token.</summary>
    public bool DeliversAccessToken => EncryptionKey is not null;

    /// <summary>
    /// Which of the broker's GitHub integrations signs the instance's users in (<c>"provider"</c>): the OAuth App
    /// (<c>oauth-app</c>, the default) or the GitHub App (<c>github-app</c>). Its tokens are refreshed and revoked
    /// through the same one.
    /// </summary>
    public string Provider { get; init; } = GitHub.GitHubProviders.OAuthApp;

    /// <summary>Logins without the instance's own <c>state</c> are refused (<c>"requireState": true</c>).</summary>
    public bool RequiresState { get; init; }

    /// <summary>
    /// The kill-switch (<c>"disabled": true</c>): the entry stays, so the instance is still recognised and told why, but
    /// no login starts or finishes for it and its broker JWTs are no longer accepted.
    /// </summary>
    public bool Disabled { get; init; }

    /// <summary>
    /// <c>"refresh": true</c>: the JWT carries GitHub's refresh token (encrypted to the instance like the access token),
    /// and the instance may refresh through the broker's token endpoint, authenticating as itself.
    /// </summary>
    public bool Refresh { get; init; }

    /// <summary>SHA-256 of the instance's client secret (<c>"clientSecret": "sha256:&lt;hex&gt;"</c>); null when it has none.</summary>
    public byte[]? ClientSecretHash { get; init; }

    /// <summary>The instance's public signing key for <c>private_key_jwt</c> (<c>"clientKey"</c>); null when it has none.</summary>
    public Microsoft.IdentityModel.Tokens.JsonWebKey? ClientKey { get; init; }

    /// <summary>
    /// <c>"public": true</c>: an OpenID Connect client that cannot keep a secret (a single-page or native app). It has no
    /// client credential, must send PKCE (S256), and redeems its codes with its client_id alone.
    /// </summary>
    public bool Public { get; init; }

    /// <summary>
    /// Where the broker may send the browser after an OpenID Connect RP-initiated logout (<c>"postLogoutRedirectUris"</c>),
    /// compared exactly; none when the entry lists none.
    /// </summary>
    public IReadOnlyList<RedirectUri> PostLogoutRedirectUris { get; init; } = [];

    /// <summary>
    /// Where the broker relays the GitHub App's webhook events that belong to this instance (<c>"webhookUrl"</c>, https or
    /// loopback); null: none are relayed.
    /// </summary>
    public RedirectUri? WebhookUrl { get; init; }

    /// <summary>The events relayed to <see cref="WebhookUrl"/> (<c>"webhookEvents"</c>; every relayed kind by default).</summary>
    public FrozenSet<string> WebhookEvents { get; init; } = Webhooks.WebhookEvents.Relayed;

    /// <summary>True when the instance can authenticate at the token endpoint, and so refresh or revoke.</summary>
    public bool HasClientCredential => ClientSecretHash is not null || ClientKey is not null;
}

/// <summary>
/// A redirect URI the caller asked for, resolved to its instance, the URI the broker will send the browser to, and the
/// registered entry that allowed it.
/// </summary>
public sealed record RedirectTarget(AllowlistInstance Instance, RedirectUri Uri, RedirectUri Entry)
{
    /// <summary>The caller sent a base URL (Trackeep) and was given the origin's registered /auth/callback.</summary>
    public bool ViaBaseUrl { get; init; }

    /// <summary>Which matching rule accepted the URI, in words for admins.</summary>
    public string Rule =>
        ViaBaseUrl ? "Trackeep base URL, sent to the origin's registered /auth/callback"
        : Entry.IsWildcard ? "wildcard host (one label)"
        : Entry.IsLoopback ? "loopback, any port (RFC 8252)"
        : "exact match";
}

/// <summary>What an admin's check of a redirect URI found: the accepting target, or the reason and the entries on that host.</summary>
public sealed record RedirectCheck(RedirectTarget? Target, string? Reason, IReadOnlyList<RedirectTarget> EntriesOnHost);

/// <summary>Adds instances that do not come from the file (the demo's own instance).</summary>
public interface IAllowlistSupplement
{
    IEnumerable<AllowlistInstance> Instances { get; }
}
