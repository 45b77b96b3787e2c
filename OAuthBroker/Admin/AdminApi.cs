using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http.HttpResults;
using OAuthBroker.Allowlist;
using OAuthBroker.Audit;
using OAuthBroker.Web;

namespace OAuthBroker.Admin;

public sealed record InstanceList(string ETag, IReadOnlyList<JsonObject> Instances);

public sealed record CheckResult(bool Accepted, string? InstanceId, string? Entry, string? Rule, string? RedirectTo, string? Reason, IReadOnlyList<string> EntriesOnHost);

public sealed record CsrfToken(string HeaderName, string Token);

/// <summary>/admin/api: the allowlist through the same validated, atomic path as the CLI, with optimistic concurrency.</summary>
public static class AdminApi
{
    public const int MaxBodyBytes = 64 * 1024;

    public static void Map(RouteGroupBuilder admin)
    {
        var api = admin.MapGroup("/api");
        api.MapGet("/instances", ListInstancesAsync);
        api.MapGet("/instances/{id}", GetInstanceAsync);
        api.MapPost("/instances", CreateInstanceAsync);
        api.MapPut("/instances/{id}", ReplaceInstanceAsync);
        api.MapDelete("/instances/{id}", DeleteInstanceAsync);
        api.MapPost("/instances/{id}/disable", (string id, HttpContext context, AllowlistEditor editor, AuditLog audit, CancellationToken cancellationToken) =>
            SetDisabledAsync(id, disabled: true, context, editor, audit, cancellationToken));
        api.MapPost("/instances/{id}/enable", (string id, HttpContext context, AllowlistEditor editor, AuditLog audit, CancellationToken cancellationToken) =>
            SetDisabledAsync(id, disabled: false, context, editor, audit, cancellationToken));
        api.MapGet("/allowlist/check", CheckUri);
        api.MapGet("/audit", QueryAuditAsync);
        api.MapGet("/health", Health.HealthEndpoints.GetReadinessAsync);
        api.MapGet("/csrf", (HttpContext context, IAntiforgery antiforgery) =>
            TypedResults.Ok(new CsrfToken(AdminAuthentication.CsrfHeader, antiforgery.GetAndStoreTokens(context).RequestToken!)));
    }

    public static async Task<Ok<InstanceList>> ListInstancesAsync(HttpContext context, AllowlistEditor editor, CancellationToken cancellationToken)
    {
        var content = await editor.ReadAsync(cancellationToken);
        context.Response.Headers.ETag = content.ETag;
        return TypedResults.Ok(new InstanceList(content.ETag, [.. content.Instances.OfType<JsonObject>().Select(entry => InstanceEntryRedaction.Redact(entry)!)]));
    }

    public static async Task<Results<Ok<JsonObject>, ProblemHttpResult>> GetInstanceAsync(string id, HttpContext context, AllowlistEditor editor, CancellationToken cancellationToken)
    {
        var content = await editor.ReadAsync(cancellationToken);
        context.Response.Headers.ETag = content.ETag;
        return content.Find(id) is { } entry
            ? TypedResults.Ok(InstanceEntryRedaction.Redact(entry)!)
            : NotFound(id);
    }

    public static async Task<IResult> CreateInstanceAsync(HttpContext context, AllowlistEditor editor, AuditLog audit, CancellationToken cancellationToken)
    {
        if (await ReadEntryAsync(context, cancellationToken) is not { } entry)
        {
            return BodyProblem();
        }

        if (RequireIfMatch(context) is { } missing)
        {
            return missing;
        }

        var outcome = await editor.AddAsync(entry, context.Request.Headers.IfMatch.ToString(), cancellationToken);
        return await RespondAsync(context, audit, "create", (string?)entry["id"], outcome, created: true, cancellationToken);
    }

    public static async Task<IResult> ReplaceInstanceAsync(string id, HttpContext context, AllowlistEditor editor, AuditLog audit, CancellationToken cancellationToken)
    {
        if (await ReadEntryAsync(context, cancellationToken) is not { } entry)
        {
            return BodyProblem();
        }

        if (RequireIfMatch(context) is { } missing)
        {
            return missing;
        }

        var outcome = await editor.ReplaceAsync(id, entry, context.Request.Headers.IfMatch.ToString(), cancellationToken);
        return await RespondAsync(context, audit, "replace", id, outcome, created: false, cancellationToken);
    }

    public static async Task<IResult> DeleteInstanceAsync(string id, HttpContext context, AllowlistEditor editor, AuditLog audit, CancellationToken cancellationToken)
    {
        if (RequireIfMatch(context) is { } missing)
        {
            return missing;
        }

        var outcome = await editor.RemoveAsync(id, context.Request.Headers.IfMatch.ToString(), cancellationToken);
        return await RespondAsync(context, audit, "delete", id, outcome, created: false, cancellationToken);
    }

    /// <summary>
    /// The kill-switch. If-Match is optional here: the change touches one field of one entry, and in an emergency a
    /// script should not have to read the allowlist first; when given, it is checked.
    /// </summary>
    public static async Task<IResult> SetDisabledAsync(string id, bool disabled, HttpContext context, AllowlistEditor editor, AuditLog audit, CancellationToken cancellationToken)
    {
        var ifMatch = context.Request.Headers.IfMatch.Count == 0 ? null : context.Request.Headers.IfMatch.ToString();
        var outcome = await editor.SetDisabledAsync(id, disabled, ifMatch, cancellationToken);
        return await RespondAsync(context, audit, disabled ? "disable" : "enable", id, outcome, created: false, cancellationToken);
    }

    public static Ok<CheckResult> CheckUri(string? uri, AllowlistProvider allowlist)
    {
        var check = allowlist.Current.Check(uri);
        return TypedResults.Ok(check.Target is { } target
            ? new CheckResult(true, target.Instance.Id, target.Entry.ToString(), target.Rule, target.Uri.ToString(), null, [])
            : new CheckResult(false, null, null, null, null, check.Reason, [.. check.EntriesOnHost.Select(entry => $"{entry.Entry} ({entry.Instance.Id})")]));
    }

    public static async Task<Ok<AuditPage>> QueryAuditAsync(string? instance, string? outcome, string? kind, long? before, int? limit, AuditLog audit, CancellationToken cancellationToken) =>
        TypedResults.Ok(await audit.QueryAsync(new AuditQuery(instance, kind, outcome, before, limit ?? 50), cancellationToken));

    /// <summary>Maps an edit's outcome to its response and records a successful change with who, where, before and after.</summary>
    public static async Task<IResult> RespondAsync(HttpContext context, AuditLog audit, string action, string? id, EditOutcome outcome, bool created, CancellationToken cancellationToken)
    {
        switch (outcome.Status)
        {
            case EditStatus.Done:
                await audit.RecordAdminAsync(context.User.Identity?.Name ?? "unknown", action, id, outcome.Before, outcome.After, ClientAddress.Of(context), cancellationToken);
                context.Response.Headers.ETag = outcome.ETag;
                return outcome.After is null ? TypedResults.NoContent()
                    : created ? TypedResults.Created(context.BrowserPath($"/admin/api/instances/{Uri.EscapeDataString(id ?? "")}"), InstanceEntryRedaction.Redact(outcome.After))
                    : TypedResults.Ok(InstanceEntryRedaction.Redact(outcome.After));
            case EditStatus.NotFound:
                return NotFound(id);
            case EditStatus.PreconditionFailed:
                context.Response.Headers.ETag = outcome.ETag;
                return TypedResults.Problem("The allowlist changed since you read it (If-Match does not match its ETag). Read it again and repeat the change.", statusCode: StatusCodes.Status412PreconditionFailed, title: "Precondition failed");
            case EditStatus.AlreadyExists:
                return TypedResults.Problem($"An instance with id '{id}' already exists.", statusCode: StatusCodes.Status409Conflict, title: "Conflict");
            default:
                return TypedResults.ValidationProblem(
                    outcome.Problems.GroupBy(problem => problem.Field).ToDictionary(group => group.Key, group => group.Select(problem => problem.Message).ToArray()),
                    detail: "The instance was not saved: " + string.Join("; ", outcome.Problems), title: "Invalid instance");
        }
    }

    private static ProblemHttpResult? RequireIfMatch(HttpContext context) =>
        string.IsNullOrEmpty(context.Request.Headers.IfMatch)
            ? TypedResults.Problem("Send If-Match with the ETag of the allowlist you read (GET /admin/api/instances), so concurrent edits cannot overwrite each other.", statusCode: StatusCodes.Status428PreconditionRequired, title: "Precondition required")
            : null;

    private static ProblemHttpResult NotFound(string? id) =>
        TypedResults.Problem($"There is no instance '{id}'.", statusCode: StatusCodes.Status404NotFound, title: "Not found");

    private static ProblemHttpResult BodyProblem() =>
        TypedResults.Problem($"Send the instance as a JSON object (at most {MaxBodyBytes} bytes) with Content-Type: application/json.", statusCode: StatusCodes.Status400BadRequest, title: "Invalid body");

    private static async Task<JsonObject?> ReadEntryAsync(HttpContext context, CancellationToken cancellationToken)
    {
        if (!context.Request.HasJsonContentType() || context.Request.ContentLength > MaxBodyBytes)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                return null;
            }

            await buffer.WriteAsync(chunk.AsMemory(0, read), cancellationToken);
        }

        try
        {
            return JsonNode.Parse(buffer.ToArray(), documentOptions: new JsonDocumentOptions { MaxDepth = 16 }) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
