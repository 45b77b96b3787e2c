using System.Text.Json;
using OAuthBroker.Allowlist;
using OAuthBroker.GitHub;
using OAuthBroker.Users;

namespace OAuthBroker.Webhooks;

/// <summary>What a delivery means for the broker: where it goes, what the broker records, and what the audit says.</summary>
public sealed record WebhookRoute(IReadOnlyList<OutboxTarget> Targets, WebhookEffects Effects, string Action, string? GitHubLogin, string? Reason)
{
    public static WebhookRoute Ignored(string eventName) => new([], WebhookEffects.None, "ignored", null, "the broker does not relay " + eventName);
}

/// <summary>
/// Routing follows ownership, never broadcast: a revoked authorization goes to the instances the user signed in to
/// through the GitHub App; an installation's events to the instances whose install relay created it. Of those, only
/// entries with a <c>webhookUrl</c> that want the event get it.
/// </summary>
public sealed class WebhookRouter(IUserStore users, IWebhookStore store, AllowlistProvider allowlist)
{
    public async Task<WebhookRoute> RouteAsync(string eventName, JsonElement root, CancellationToken cancellationToken)
    {
        var action = String(root, "action") ?? "";
        switch (eventName)
        {
            case WebhookEvents.AppAuthorization when action == "revoked" && Long(root, "sender", "id") is { } gitHubId:
            {
                var login = String(root, "sender", "login");
                var user = await users.FindByGitHubIdAsync(gitHubId, cancellationToken);
                var signedIn = user is null ? [] : (await users.ListInstancesAsync(user.Id, cancellationToken))
                    .Where(row => row.Provider == GitHubProviders.GitHubApp).Select(row => row.InstanceId).Distinct(StringComparer.Ordinal).ToList();
                return new(
                    Targets(signedIn, eventName, "user:" + gitHubId),
                    new WebhookEffects { RevokedGitHubUserId = gitHubId, RevokedInstanceIds = signedIn },
                    "app_authorization_revoked", login ?? user?.Login, user is null ? "not a user of the broker" : null);
            }

            case WebhookEvents.Installation or WebhookEvents.InstallationRepositories when Long(root, "installation", "id") is { } installationId:
            {
                var owners = await store.FindInstallationInstancesAsync(installationId, cancellationToken);
                var status = eventName != WebhookEvents.Installation ? null : action switch
                {
                    "deleted" => "deleted",
                    "suspend" => "suspended",
                    "created" or "unsuspend" or "new_permissions_accepted" => "active",
                    _ => null,
                };
                var account = String(root, "installation", "account", "login");
                return new(
                    Targets(owners, eventName, "installation:" + installationId),
                    status is null ? WebhookEffects.None : new WebhookEffects { Installation = new InstallationStatus(installationId, account, status) },
                    eventName + "." + action, String(root, "sender", "login"),
                    $"installation {installationId} on {account ?? "an unknown account"}{(owners.Count == 0 ? ", created by no instance's install relay" : "")}");
            }

            default:
                return WebhookRoute.Ignored(eventName);
        }
    }

    private List<OutboxTarget> Targets(IEnumerable<string> instanceIds, string eventName, string orderingKey)
    {
        var current = allowlist.Current.Instances;
        return [.. instanceIds
            .Where(id => current.TryGetValue(id, out var instance) && instance.WebhookUrl is not null && instance.WebhookEvents.Contains(eventName))
            .Select(id => new OutboxTarget(id, orderingKey))];
    }

    private static JsonElement? Walk(JsonElement element, string[] path)
    {
        foreach (var name in path)
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out element))
            {
                return null;
            }
        }

        return element;
    }

    private static string? String(JsonElement root, params string[] path) =>
        Walk(root, path) is { ValueKind: JsonValueKind.String } value && value.GetString() is { Length: <= 256 } text ? text : null;

    private static long? Long(JsonElement root, params string[] path) =>
        Walk(root, path) is { ValueKind: JsonValueKind.Number } value && value.TryGetInt64(out var number) && number > 0 ? number : null;
}
