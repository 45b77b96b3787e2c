using System.Globalization;
using System.Text;
using OAuthBroker.Allowlist;
using OAuthBroker.Audit;
using OAuthBroker.Users;
using OAuthBroker.Web;
using OAuthBroker.Webhooks;

namespace OAuthBroker.Admin;

/// <summary>
/// The overview at the top of /admin: per instance, sign-ins over the last 24 hours (hourly) and 7 days (daily) as
/// small bar charts drawn on the server in SVG (no script, so the CSP stays as strict as every other page), refusals,
/// the last sign-in; then refusals by reason, users near GitHub's ten-token cap and the webhook outbox.
/// </summary>
public static class AdminDashboard
{
    public const int HoursCharted = 24;
    public const int DaysCharted = 7;

    /// <summary>Counted up to here, then shown as "N+": the overview never reads a whole large outbox.</summary>
    private const int OutboxCountedUpTo = 1000;

    private const string SucceededAction = "succeeded";
    private const string RefusedAction = "refused";

    public static async Task<string> RenderAsync(
        HttpContext context, AllowlistSnapshot allowlist, AuditLog audit, IUserStore users, IWebhookStore webhooks, ILookup<string, AuditEvent> recent, CancellationToken cancellationToken)
    {
        var (hourStart, hourly) = await audit.LoginActivityAsync(TimeSpan.FromHours(1), HoursCharted, cancellationToken);
        var (dayStart, daily) = await audit.LoginActivityAsync(TimeSpan.FromDays(1), DaysCharted, cancellationToken);
        var nearCap = await users.FindNearTokenLimitAsync(Account.AccountPage.TokenLimitWarning, 100, cancellationToken);
        var pending = (await webhooks.ListAsync(dead: false, OutboxCountedUpTo + 1, cancellationToken)).Count;
        var dead = (await webhooks.ListAsync(dead: true, OutboxCountedUpTo + 1, cancellationToken)).Count;

        var body = new StringBuilder("<h2>Overview</h2>");
        body.Append(CultureInfo.InvariantCulture, $"<div class=\"cards\"><p class=\"card\"><strong id=\"near-cap-count\">{nearCap.Count}</strong> users near GitHub's ten tokens per app and scope set <a href=\"{HtmlPage.Encode(context.BrowserPath("/admin/users"))}\">Users</a></p>")
            .Append(CultureInfo.InvariantCulture, $"<p class=\"card\"><strong id=\"outbox-pending\">{Bounded(pending)}</strong> webhook events waiting, <strong id=\"outbox-dead\">{Bounded(dead)}</strong> dead-lettered <a href=\"{HtmlPage.Encode(context.BrowserPath("/admin/webhooks"))}\">Webhooks</a></p></div>");

        body.Append(CultureInfo.InvariantCulture, $"<table id=\"overview\"><thead><tr><th>Instance</th><th>Sign-ins, last 24 hours</th><th>Sign-ins, last {DaysCharted} days</th><th>Refused, {DaysCharted} days</th><th>Last sign-in (UTC)</th></tr></thead><tbody>");
        foreach (var instance in allowlist.Instances.Values.OrderBy(instance => instance.Id, StringComparer.Ordinal))
        {
            var hours = Series(hourly, instance.Id, SucceededAction, HoursCharted);
            var days = Series(daily, instance.Id, SucceededAction, DaysCharted);
            var refused = daily.Where(row => row.InstanceId == instance.Id && row.Action == RefusedAction).Sum(row => row.Count);
            var last = recent[instance.Id].Where(login => login.Action == SucceededAction).Select(login => login.At).DefaultIfEmpty().Max();
            body.Append(CultureInfo.InvariantCulture, $"<tr><td>{HtmlPage.Encode(instance.Id)}{(instance.Disabled ? " <strong class=\"disabled\">disabled</strong>" : "")}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{Chart($"chart-24h-{instance.Id}", hours, hourStart, TimeSpan.FromHours(1), "HH:00")} {hours.Sum()}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{Chart($"chart-7d-{instance.Id}", days, dayStart, TimeSpan.FromDays(1), "ddd d MMM")} {days.Sum()}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{refused}</td><td>{(last == default ? "never" : last.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture))}</td></tr>");
        }

        body.Append("</tbody></table>");
        var reasons = daily.Where(row => row.Action == RefusedAction)
            .GroupBy(row => row.Reason ?? "(no reason recorded)", StringComparer.Ordinal)
            .Select(group => (Reason: group.Key, Count: group.Sum(row => row.Count)))
            .OrderByDescending(entry => entry.Count).ThenBy(entry => entry.Reason, StringComparer.Ordinal).Take(10).ToList();
        body.Append(CultureInfo.InvariantCulture, $"<h3>Refusals by reason, last {DaysCharted} days</h3>");
        if (reasons.Count == 0)
        {
            body.Append("<p id=\"refusals-none\">No sign-in was refused.</p>");
        }
        else
        {
            body.Append("<table id=\"refusals\"><thead><tr><th>Reason</th><th>Refused</th></tr></thead><tbody>");
            foreach (var (reason, count) in reasons)
            {
                body.Append(CultureInfo.InvariantCulture, $"<tr><td>{HtmlPage.Encode(reason)}</td><td>{count}</td></tr>");
            }

            body.Append("</tbody></table>");
        }

        return body.ToString();
    }

    /// <summary>The counts of one instance and action per bucket, oldest first, with zeros where nothing happened.</summary>
    public static long[] Series(IEnumerable<LoginActivity> rows, string instanceId, string action, int buckets)
    {
        var series = new long[buckets];
        foreach (var row in rows.Where(row => row.InstanceId == instanceId && row.Action == action && row.Bucket >= 0 && row.Bucket < buckets))
        {
            series[row.Bucket] += row.Count;
        }

        return series;
    }

    /// <summary>
    /// One bar per bucket, scaled to the largest, each with its count and time in a title (the browser's tooltip) and
    /// a data attribute; presentation attributes only, since the CSP allows no inline style.
    /// </summary>
    private static string Chart(string id, long[] series, DateTimeOffset start, TimeSpan bucket, string label)
    {
        const int Height = 28;
        const int BarWidth = 6;
        var max = Math.Max(1, series.Max());
        var svg = new StringBuilder().Append(CultureInfo.InvariantCulture, $"<svg class=\"chart\" id=\"{HtmlPage.Encode(id)}\" width=\"{series.Length * BarWidth}\" height=\"{Height}\" viewBox=\"0 0 {series.Length * BarWidth} {Height}\" role=\"img\" aria-label=\"{series.Sum()} sign-ins\">");
        for (var i = 0; i < series.Length; i++)
        {
            var height = series[i] == 0 ? 1 : Math.Max(2, (int)Math.Round(series[i] * (Height - 2) / (double)max));
            var at = start + (bucket * i);
            svg.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{i * BarWidth}\" y=\"{Height - height}\" width=\"{BarWidth - 1}\" height=\"{height}\" fill=\"{(series[i] == 0 ? "#d0d7de" : "#2da44e")}\" data-count=\"{series[i]}\"><title>{HtmlPage.Encode(at.ToString(label, CultureInfo.InvariantCulture))}: {series[i]}</title></rect>");
        }

        return svg.Append("</svg>").ToString();
    }

    private static string Bounded(int count) => count > OutboxCountedUpTo ? OutboxCountedUpTo.ToString(CultureInfo.InvariantCulture) + "+" : count.ToString(CultureInfo.InvariantCulture);
}
