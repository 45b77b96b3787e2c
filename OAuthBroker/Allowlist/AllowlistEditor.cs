using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OAuthBroker.Allowlist;

public enum EditStatus
{
    Done,
    NotFound,
    AlreadyExists,
    PreconditionFailed,
    Invalid,
}

/// <summary>What an edit did: the entry before and after, the file's new ETag, or why nothing was written.</summary>
public sealed record EditOutcome(EditStatus Status, string ETag, JsonObject? Before, JsonObject? After, IReadOnlyList<AllowlistProblem> Problems)
{
    public static EditOutcome Refused(EditStatus status, string etag, params AllowlistProblem[] problems) => new(status, etag, null, null, problems);
}

/// <summary>The allowlist document as it is now, and its ETag (the SHA-256 of its bytes).</summary>
public sealed record AllowlistContent(string ETag, JsonObject Root, JsonArray Instances)
{
    public JsonObject? Find(string id) =>
        Instances.OfType<JsonObject>().FirstOrDefault(entry => string.Equals((string?)entry["id"], id, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// Edits the allowlist for the CLI, the admin API and the admin page alike, wherever it is kept (<see cref="IAllowlistSource"/>):
/// one instance at a time or the whole document, validated with the same rules as the broker's own load before anything
/// is written, every other entry kept as it was, and written whole under the source's lock, so a running broker never
/// reads a torn document and two editors (processes or replicas) cannot overwrite each other's change.
/// </summary>
/// <remarks>Entries are rewritten as JSON: comments in the file do not survive an edit through this class.</remarks>
public sealed class AllowlistEditor(IAllowlistSource source, AllowlistDefaults defaults)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static readonly JsonDocumentOptions Lenient = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 16 };

    public static string ToETag(string sha256) => $"\"{sha256}\"";

    /// <summary>Reads the current document; throws <see cref="AllowlistException"/> when it is not a JSON object with an instances array.</summary>
    public async Task<AllowlistContent> ReadAsync(CancellationToken cancellationToken) =>
        Parse((await source.ReadAsync(null, cancellationToken))!);

    public Task<EditOutcome> AddAsync(JsonObject instance, string? ifMatch, CancellationToken cancellationToken) => EditAsync(ifMatch, content =>
    {
        var id = (string?)instance["id"] ?? "";
        if (content.Find(id) is not null)
        {
            return (EditStatus.AlreadyExists, null, null, [new AllowlistProblem("id", $"'{id}' is already an instance")]);
        }

        var added = (JsonObject)instance.DeepClone();
        content.Instances.Add((JsonNode)added);
        return (EditStatus.Done, null, added, []);
    }, cancellationToken);

    public Task<EditOutcome> ReplaceAsync(string id, JsonObject instance, string? ifMatch, CancellationToken cancellationToken) => EditAsync(ifMatch, content =>
    {
        if (content.Find(id) is not { } existing)
        {
            return (EditStatus.NotFound, null, null, []);
        }

        if (!string.Equals((string?)instance["id"], (string?)existing["id"], StringComparison.Ordinal))
        {
            return (EditStatus.Invalid, null, null, [new AllowlistProblem("id", "must stay the same; remove the instance and add a new one to rename it")]);
        }

        var index = content.Instances.IndexOf(existing);
        var before = (JsonObject)existing.DeepClone();
        var replacement = (JsonObject)instance.DeepClone();
        content.Instances[index] = replacement;
        return (EditStatus.Done, before, replacement, []);
    }, cancellationToken);

    public Task<EditOutcome> RemoveAsync(string id, string? ifMatch, CancellationToken cancellationToken) => EditAsync(ifMatch, content =>
    {
        if (content.Find(id) is not { } existing)
        {
            return (EditStatus.NotFound, null, null, []);
        }

        content.Instances.Remove(existing);
        return (EditStatus.Done, existing, null, []);
    }, cancellationToken);

    /// <summary>
    /// The kill-switch: sets <c>"disabled": true</c> on the entry, or removes the property to enable it again, leaving
    /// every other field as it was. Done even when the entry already was in that state, so the audit shows the request.
    /// </summary>
    public Task<EditOutcome> SetDisabledAsync(string id, bool disabled, string? ifMatch, CancellationToken cancellationToken) => ChangeEntryAsync(id, ifMatch, entry =>
    {
        if (disabled)
        {
            entry["disabled"] = true;
        }
        else
        {
            entry.Remove("disabled");
        }
    }, cancellationToken);

    /// <summary>Sets the entry's client secret to the hash of <paramref name="secret"/>, replacing any it had; nothing else changes.</summary>
    public Task<EditOutcome> SetClientSecretAsync(string id, string secret, string? ifMatch, CancellationToken cancellationToken) => ChangeEntryAsync(id, ifMatch, entry =>
        entry["clientSecret"] = AllowlistFile.ClientSecretEntry(secret), cancellationToken);

    private Task<EditOutcome> ChangeEntryAsync(string id, string? ifMatch, Action<JsonObject> change, CancellationToken cancellationToken) => EditAsync(ifMatch, content =>
    {
        if (content.Find(id) is not { } existing)
        {
            return (EditStatus.NotFound, null, null, []);
        }

        var before = (JsonObject)existing.DeepClone();
        change(existing);
        return (EditStatus.Done, before, (JsonObject)existing.DeepClone(), []);
    }, cancellationToken);

    /// <summary>Replaces the whole document with <paramref name="bytes"/> (<c>allowlist import</c>), kept byte for byte when it is valid.</summary>
    public async Task<EditOutcome> ImportAsync(byte[] bytes, CancellationToken cancellationToken)
    {
        await using var writer = await source.LockAsync(cancellationToken);
        var etag = ToETag(writer.CurrentSha256);
        if (RefuseInvalid(bytes, etag) is { } refused)
        {
            return refused;
        }

        await writer.WriteAsync(bytes, cancellationToken);
        return new EditOutcome(EditStatus.Done, ToETag(AllowlistFile.Sha256(bytes)), null, null, []);
    }

    private async Task<EditOutcome> EditAsync(string? ifMatch, Func<AllowlistContent, (EditStatus Status, JsonObject? Before, JsonObject? After, AllowlistProblem[] Problems)> change, CancellationToken cancellationToken)
    {
        await using var writer = await source.LockAsync(cancellationToken);
        var content = Parse(writer.Current);
        if (ifMatch is not null && ifMatch != "*" && !string.Equals(ifMatch.Trim(), content.ETag, StringComparison.Ordinal))
        {
            return EditOutcome.Refused(EditStatus.PreconditionFailed, content.ETag, new AllowlistProblem("If-Match", "does not match the current allowlist; read it again and repeat the change"));
        }

        var (status, before, after, problems) = change(content);
        if (status != EditStatus.Done)
        {
            return EditOutcome.Refused(status, content.ETag, problems);
        }

        if (after is not null && AllowlistFile.ValidateInstance(after.ToJsonString(), defaults.Scopes) is { Count: > 0 } instanceProblems)
        {
            return EditOutcome.Refused(EditStatus.Invalid, content.ETag, [.. instanceProblems]);
        }

        var bytes = Encoding.UTF8.GetBytes(content.Root.ToJsonString(Indented) + "\n");
        if (RefuseInvalid(bytes, content.ETag) is { } refused)
        {
            return refused;
        }

        await writer.WriteAsync(bytes, cancellationToken);
        return new EditOutcome(EditStatus.Done, ToETag(AllowlistFile.Sha256(bytes)), before, after, []);
    }

    /// <summary>The refusal of a whole document the broker's load would refuse, naming every problem; null when it is valid.</summary>
    private EditOutcome? RefuseInvalid(byte[] bytes, string etag) =>
        AllowlistFile.Validate(bytes, defaults.Scopes) is { Count: > 0 } errors
            ? EditOutcome.Refused(EditStatus.Invalid, etag, [.. errors.Select(error => new AllowlistProblem("allowlist", error))])
            : null;

    private AllowlistContent Parse(StoredAllowlist stored)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(stored.Bytes, documentOptions: Lenient);
        }
        catch (JsonException exception)
        {
            throw new AllowlistException($"{source.Location} is not valid JSON ({exception.Message}); fix it by hand before editing it here.", exception);
        }

        if (root is not JsonObject rootObject || rootObject["instances"] is not JsonArray instances)
        {
            throw new AllowlistException($"{source.Location} must be an object with an \"instances\" array; fix it by hand before editing it here.");
        }

        return new AllowlistContent(ToETag(stored.Sha256), rootObject, instances);
    }
}
