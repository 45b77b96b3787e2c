using System.Collections.Frozen;

namespace OAuthBroker.Allowlist;

/// <summary>GitHub OAuth scope lists: as the broker accepts them and as GitHub writes them.</summary>
public static class Scopes
{
    public const int MaxScopes = 32;

    /// <summary>GitHub scope names are lower-case words joined by ':' or '_' (repo, read:user, admin:repo_hook).</summary>
    public static bool IsValid(string? scope) =>
        scope is { Length: > 0 and <= 64 } && scope.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is ':' or '_');

    /// <summary>Splits a scope list on spaces or commas (GitHub answers with commas, OAuth requests use spaces).</summary>
    public static string[] Split(string? list) =>
        string.IsNullOrEmpty(list) ? [] : list.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The scope to ask GitHub for: what the caller asked, each within what the instance may have.</summary>
    public static bool TryResolve(string? requested, IReadOnlyCollection<string> defaults, FrozenSet<string> allowed, out string resolved, out string? error)
    {
        resolved = "";
        string[] wanted;
        if (requested is null)
        {
            wanted = [.. defaults.Where(allowed.Contains)];
        }
        else
        {
            wanted = Split(requested);
            if (requested.Length > 1024 || wanted.Length > MaxScopes)
            {
                error = $"scope lists more than {MaxScopes} scopes";
                return false;
            }

            if (wanted.FirstOrDefault(scope => !IsValid(scope)) is not null)
            {
                error = "scope has a value that is not a GitHub scope name";
                return false;
            }

            // The name is a valid scope token (checked above), so it is safe to show.
            if (wanted.FirstOrDefault(scope => !allowed.Contains(scope)) is { } refused)
            {
                error = $"scope '{refused}' is not allowed for this instance";
                return false;
            }
        }

        resolved = string.Join(' ', wanted.Distinct(StringComparer.Ordinal));
        error = null;
        return true;
    }
}
