using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;

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

/// <summary>The allowlist file as it is now, and its ETag (the SHA-256 of its bytes).</summary>
public sealed record AllowlistContent(string ETag, JsonObject Root, JsonArray Instances)
{
    public JsonObject? Find(string id) =>
        Instances.OfType<JsonObject>().FirstOrDefault(entry => string.Equals((string?)entry["id"], id, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// Edits <c>allowed-redirects.json</c> for the CLI and the admin API alike: one instance at a time, validated with the
/// same rules as the broker's own load before anything is written, every other entry kept as it was, and written
/// atomically (temporary file, flush, rename) under a lock file, so a running broker never reads a torn file and two
/// editors cannot overwrite each other's change.
/// </summary>
/// <remarks>Entries are rewritten as JSON: comments in the file do not survive an edit through this class.</remarks>
public sealed class AllowlistEditor(IOptions<BrokerOptions> options, AllowlistDefaults defaults)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static readonly JsonDocumentOptions Lenient = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 16 };
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(10);

    private string FilePath => Path.GetFullPath(options.Value.AllowlistPath);

    public static string ToETag(string sha256) => $"\"{sha256}\"";

    /// <summary>Reads the current file; throws <see cref="AllowlistException"/> when it is not a JSON object with an instances array.</summary>
    public AllowlistContent Read() => Parse(AllowlistFile.Read(FilePath));

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

    private async Task<EditOutcome> EditAsync(string? ifMatch, Func<AllowlistContent, (EditStatus Status, JsonObject? Before, JsonObject? After, AllowlistProblem[] Problems)> change, CancellationToken cancellationToken)
    {
        using var exclusive = await AcquireLockAsync(cancellationToken);
        var content = Read();
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
        if (AllowlistFile.Validate(bytes, defaults.Scopes) is { Count: > 0 } documentErrors)
        {
            return EditOutcome.Refused(EditStatus.Invalid, content.ETag, [.. documentErrors.Select(error => new AllowlistProblem("allowlist", error))]);
        }

        WriteAtomically(bytes);
        return new EditOutcome(EditStatus.Done, ToETag(AllowlistFile.Sha256(bytes)), before, after, []);
    }

    private static AllowlistContent Parse(byte[] bytes)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(bytes, documentOptions: Lenient);
        }
        catch (JsonException exception)
        {
            throw new AllowlistException($"The allowlist file is not valid JSON ({exception.Message}); fix it by hand before editing it here.", exception);
        }

        if (root is not JsonObject rootObject || rootObject["instances"] is not JsonArray instances)
        {
            throw new AllowlistException("The allowlist file must be an object with an \"instances\" array; fix it by hand before editing it here.");
        }

        return new AllowlistContent(ToETag(AllowlistFile.Sha256(bytes)), rootObject, instances);
    }

    private void WriteAtomically(byte[] bytes)
    {
        var temporary = Path.Combine(Path.GetDirectoryName(FilePath)!, $".{Path.GetFileName(FilePath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            UnixFileMode? mode = OperatingSystem.IsWindows() || !File.Exists(FilePath) ? null : File.GetUnixFileMode(FilePath);
            if (mode is { } original && !OperatingSystem.IsWindows())
            {
                // The file may hold shared secrets: the copy is never more readable than the original, not even briefly.
                options.UnixCreateMode = original;
            }

            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            if (mode is { } exact && !OperatingSystem.IsWindows())
            {
                // The process umask may have taken bits off at creation; the operator's mode is kept as it was.
                File.SetUnixFileMode(temporary, exact);
            }

            // rename(2) replaces the file in one step: a reader sees the old content or the new, never a mix.
            File.Move(temporary, FilePath, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>
    /// Waits for the lock file without holding a thread (an admin request must not block one while the CLI edits), and
    /// gives up when the caller does: a request whose client went away writes nothing.
    /// </summary>
    private async Task<FileStream> AcquireLockAsync(CancellationToken cancellationToken)
    {
        var lockPath = FilePath + ".lock";
        var deadline = DateTime.UtcNow + LockTimeout;
        while (true)
        {
            try
            {
                // FileShare.None is an flock(2) on Unix, so it also excludes other processes (the CLI beside the service).
                // The lock file is left in place: deleting it would let two waiters lock two different files.
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(20, cancellationToken);
            }
        }
    }
}
