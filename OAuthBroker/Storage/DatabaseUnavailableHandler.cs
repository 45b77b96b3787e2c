using System.Data.Common;
using Microsoft.AspNetCore.Diagnostics;
using OAuthBroker.Web;

namespace OAuthBroker.Storage;

/// <summary>
/// A request that meets a database it cannot reach (PostgreSQL restarting, a failover, the pool exhausted) gets a clear
/// 503 with Retry-After, as a page or problem details: never a 500, and never half an answer. Nothing was handed out:
/// the login flow writes before it redirects, so a failed write stops the request before any token is made.
/// </summary>
public sealed partial class DatabaseUnavailableHandler(ILogger<DatabaseUnavailableHandler> logger) : IExceptionHandler
{
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        if (exception is not DbException database || httpContext.Response.HasStarted)
        {
            return false;
        }

        Log.Unavailable(logger, database.GetType().Name, database.SqlState ?? "none", httpContext.Request.Path);
        await Refusal.UnavailableAsync(httpContext, "Temporarily unavailable", "The broker cannot reach its database just now; try again in a few seconds.", RetryAfter);
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 6003, Level = LogLevel.Warning, Message = "Database unavailable ({ExceptionType}, SQL state {SqlState}) during {Path}; answered 503")]
        public static partial void Unavailable(ILogger logger, string exceptionType, string sqlState, string path);
    }
}
