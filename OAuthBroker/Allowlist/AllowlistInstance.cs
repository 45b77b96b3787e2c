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
}

/// <summary>A redirect URI the caller asked for, resolved to its instance and to the URI the broker will send the browser to.</summary>
public sealed record RedirectTarget(AllowlistInstance Instance, RedirectUri Uri);

/// <summary>Adds instances that do not come from the file (the demo's own instance).</summary>
public interface IAllowlistSupplement
{
    IEnumerable<AllowlistInstance> Instances { get; }
}
