using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace OAuthBroker.Allowlist;

/// <summary>An immutable, validated allowlist with lookup indexes; a reload builds a new one and swaps it in whole.</summary>
public sealed class AllowlistSnapshot
{
    private const string TrackeepCallbackPath = "/auth/callback";

    private readonly FrozenDictionary<string, RedirectTarget> byRedirectUri;
    private readonly FrozenDictionary<string, RedirectTarget[]> trackeepCallbacksByOrigin;

    public AllowlistSnapshot(IReadOnlyList<AllowlistInstance> instances, string sha256, DateTimeOffset loadedAt)
    {
        Instances = instances.ToFrozenDictionary(instance => instance.Id, StringComparer.Ordinal);
        Sha256 = sha256;
        LoadedAt = loadedAt;

        var targets = instances.SelectMany(instance => instance.RedirectUris.Select(uri => new RedirectTarget(instance, uri, uri))).ToList();
        byRedirectUri = targets.ToFrozenDictionary(target => IndexKey(target.Uri, target.Uri.Path), StringComparer.Ordinal);
        trackeepCallbacksByOrigin = targets
            .Where(target => target.Uri.Path.EndsWith(TrackeepCallbackPath, StringComparison.Ordinal))
            .GroupBy(target => IndexKey(target.Uri, ""), StringComparer.Ordinal)
            .ToFrozenDictionary(group => group.Key, group => group.ToArray(), StringComparer.Ordinal);
    }

    public FrozenDictionary<string, AllowlistInstance> Instances { get; }

    /// <summary>Hex SHA-256 of the file this snapshot was built from.</summary>
    public string Sha256 { get; }

    public DateTimeOffset LoadedAt { get; }

    /// <summary>
    /// The key under which an entry is indexed and a request is looked up: an entry with a wildcard host is keyed by
    /// its parent domain, a loopback entry without its port (RFC 8252 section 7.3: any port).
    /// </summary>
    public static string IndexKey(RedirectUri uri, string path)
    {
        var port = uri.IsLoopback ? "*" : uri.EffectivePort.ToString(CultureInfo.InvariantCulture);
        return $"{uri.Scheme}://{uri.Host}:{port}{path}";
    }

    /// <summary>Finds the instance and redirect target for a redirect URI a caller sent, or says why there is none.</summary>
    public bool TryMatch(string? requested, [NotNullWhen(true)] out RedirectTarget? target, [NotNullWhen(false)] out string? reason)
    {
        target = null;
        if (!RedirectUri.TryParse(requested, allowWildcard: false, out var uri, out var error))
        {
            reason = "redirect_uri " + error;
            return false;
        }

        if (Lookup(uri, uri.Path) is { } exact)
        {
            target = exact with { Uri = uri };
            reason = null;
            return true;
        }

        // Trackeep sends its base URL; when that origin registered exactly one .../auth/callback, send the browser there.
        if (uri.Path is "" or "/" && LookupOrigin(uri) is { } callbacks)
        {
            if (callbacks.Length == 1)
            {
                target = callbacks[0] with { Uri = uri with { Path = callbacks[0].Uri.Path }, ViaBaseUrl = true };
                reason = null;
                return true;
            }

            reason = "redirect_uri is a base URL whose origin has several registered callbacks; send the full callback URL";
            return false;
        }

        reason = "redirect_uri is not registered for any instance";
        return false;
    }

    /// <summary>
    /// For admins (CLI, API, page): whether a redirect URI is accepted and by which entry, or why not and which
    /// entries are registered on its host, to compare it with.
    /// </summary>
    public RedirectCheck Check(string? requested)
    {
        if (TryMatch(requested, out var target, out var reason))
        {
            return new RedirectCheck(target, null, []);
        }

        var onHost = RedirectUri.TryParse(requested, allowWildcard: false, out var parsed, out _) ? EntriesForHost(parsed).ToList() : [];
        return new RedirectCheck(null, reason, onHost);
    }

    // Registered entries on the same host as the URI, or a wildcard over it.
    private IEnumerable<RedirectTarget> EntriesForHost(RedirectUri uri)
    {
        var parent = WildcardParent(uri);
        return byRedirectUri.Values.Where(target => target.Entry.Host == uri.Host || (parent is not null && target.Entry.Host == parent.Host));
    }

    private RedirectTarget? Lookup(RedirectUri uri, string path)
    {
        if (byRedirectUri.TryGetValue(IndexKey(uri, path), out var target))
        {
            return target;
        }

        return WildcardParent(uri) is { } parent && byRedirectUri.TryGetValue(IndexKey(parent, path), out target) ? target : null;
    }

    private RedirectTarget[]? LookupOrigin(RedirectUri uri)
    {
        if (trackeepCallbacksByOrigin.TryGetValue(IndexKey(uri, ""), out var targets))
        {
            return targets;
        }

        return WildcardParent(uri) is { } parent && trackeepCallbacksByOrigin.TryGetValue(IndexKey(parent, ""), out targets) ? targets : null;
    }

    // "a.tenants.example.net" -> "*.tenants.example.net": a wildcard stands for exactly one label, so only the
    // left-most label is replaced and the bare parent domain never matches.
    private static RedirectUri? WildcardParent(RedirectUri uri)
    {
        if (uri.IsLoopback)
        {
            return null;
        }

        var dot = uri.Host.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 ? uri with { Host = "*" + uri.Host[dot..] } : null;
    }
}
