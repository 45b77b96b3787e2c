using Microsoft.AspNetCore.Diagnostics;
using OAuthBroker.Web;

namespace OAuthBroker.Allowlist;

/// <summary>
/// An edit that waited out the allowlist's lock (the CLI, or another writer, holding it) gets a 503 with Retry-After
/// that says so, as a page or problem details: the edit was not made, and the same request may succeed shortly.
/// </summary>
public sealed partial class AllowlistBusyHandler(ILogger<AllowlistBusyHandler> logger) : IExceptionHandler
{
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        if (exception is not AllowlistException { Retryable: true } busy || httpContext.Response.HasStarted)
        {
            return false;
        }

        Log.Busy(logger, httpContext.Request.Path, busy.Message);
        await Refusal.UnavailableAsync(httpContext, "Allowlist busy", busy.Message, RetryAfter);
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Allowlist edit at {Path} not made, answered 503: {Reason}")]
        public static partial void Busy(ILogger logger, string path, string reason);
    }
}
