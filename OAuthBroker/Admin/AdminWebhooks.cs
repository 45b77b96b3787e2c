using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http.HttpResults;
using OAuthBroker.Audit;
using OAuthBroker.Web;
using OAuthBroker.Webhooks;

namespace OAuthBroker.Admin;

/// <summary>The webhook outbox for admins: dead-lettered and pending events (never their payloads), and a manual redelivery.</summary>
public static class AdminWebhooks
{
    public const int Listed = 100;

    public static void Map(RouteGroupBuilder admin)
    {
        admin.MapGet("/webhooks", ShowAsync);
        admin.MapPost("/webhooks/{id:long}/redeliver", RedeliverFromPageAsync);
        admin.MapGet("/api/webhooks", ListAsync);
        admin.MapPost("/api/webhooks/{id:long}/redeliver", RedeliverAsync);
    }

    public static async Task<Ok<WebhookList>> ListAsync(IWebhookStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await ReadAsync(store, cancellationToken));

    public static async Task<Results<Ok<WebhookSummary>, ProblemHttpResult>> RedeliverAsync(
        long id, HttpContext context, IWebhookStore store, AuditLog audit, TimeProvider time, CancellationToken cancellationToken) =>
        await RequeueAsync(id, context, store, audit, time, cancellationToken) is { } requeued
            ? TypedResults.Ok(requeued)
            : TypedResults.Problem($"Event {id} is not dead-lettered (unknown, pending or delivered).", statusCode: StatusCodes.Status404NotFound, title: "Not found");

    private static async Task<WebhookList> ReadAsync(IWebhookStore store, CancellationToken cancellationToken) => new(
        [.. (await store.ListAsync(dead: true, Listed, cancellationToken)).Select(WebhookSummary.Of)],
        [.. (await store.ListAsync(dead: false, Listed, cancellationToken)).Select(WebhookSummary.Of)]);

    private static async Task<WebhookSummary?> RequeueAsync(long id, HttpContext context, IWebhookStore store, AuditLog audit, TimeProvider time, CancellationToken cancellationToken)
    {
        if (await store.RedeliverAsync(id, time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken) is not { } requeued)
        {
            return null;
        }

        await audit.RecordAdminAsync(context.User.Identity?.Name ?? "unknown", "webhook_redeliver", requeued.InstanceId, null,
            new System.Text.Json.Nodes.JsonObject { ["event"] = id }, ClientAddress.Of(context), cancellationToken);
        return WebhookSummary.Of(requeued);
    }

    private static async Task<IResult> ShowAsync(HttpContext context, IWebhookStore store, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        var list = await ReadAsync(store, cancellationToken);
        var tokens = antiforgery.GetAndStoreTokens(context);
        var body = new StringBuilder("<p>GitHub App events relayed to the instances they belong to. An event an instance did not accept is retried with growing waits, then dead-lettered; Redeliver puts it back in the queue.</p>")
            .Append(CultureInfo.InvariantCulture, $"<h2>Dead-lettered ({list.Dead.Count})</h2>")
            .Append(Table("dead-letters", list.Dead, message =>
                $"<form method=\"post\" action=\"{HtmlPage.Encode(context.BrowserPath($"/admin/webhooks/{message.Id}/redeliver"))}\"><input type=\"hidden\" name=\"{HtmlPage.Encode(tokens.FormFieldName)}\" value=\"{HtmlPage.Encode(tokens.RequestToken)}\"><button>Redeliver</button></form>"))
            .Append(CultureInfo.InvariantCulture, $"<h2>Pending ({list.Pending.Count})</h2>")
            .Append(Table("pending", list.Pending, message => message.NextAttemptAt is { } next ? $"next try {next:yyyy-MM-dd HH:mm:ss}" : ""))
            .Append(CultureInfo.InvariantCulture, $"<p><a href=\"{HtmlPage.Encode(context.BrowserPath("/admin"))}\">Back to the admin page</a></p>");
        return HtmlPage.Render("Webhooks", body.ToString());
    }

    private static async Task<IResult> RedeliverFromPageAsync(long id, HttpContext context, IWebhookStore store, AuditLog audit, TimeProvider time, CancellationToken cancellationToken) =>
        await RequeueAsync(id, context, store, audit, time, cancellationToken) is null
            ? HtmlPage.Error("Not found", $"Event {id} is not dead-lettered.", StatusCodes.Status404NotFound)
            : TypedResults.Redirect(context.BrowserPath("/admin/webhooks"), preserveMethod: false);

    private static string Table(string id, IReadOnlyList<WebhookSummary> messages, Func<WebhookSummary, string> last)
    {
        if (messages.Count == 0)
        {
            return $"<p id=\"{id}-none\">None.</p>";
        }

        var table = new StringBuilder($"<table id=\"{id}\"><tr><th>Event</th><th>Instance</th><th>Received (UTC)</th><th>Attempts</th><th>Last error</th><th></th></tr>");
        foreach (var message in messages)
        {
            table.Append(CultureInfo.InvariantCulture,
                $"<tr><td>{HtmlPage.Encode(message.Event)} <small>{HtmlPage.Encode(message.DeliveryId)}</small></td><td>{HtmlPage.Encode(message.InstanceId)}</td><td>{message.CreatedAt:yyyy-MM-dd HH:mm:ss}</td><td>{message.Attempts}</td><td>{HtmlPage.Encode(message.LastError)}</td><td>{last(message)}</td></tr>");
        }

        return table.Append("</table>").ToString();
    }
}
