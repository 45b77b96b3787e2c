using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;

namespace OAuthBroker.Web;

/// <summary>Request budgets per minute (configuration section <c>RateLimits</c>); 0 turns a limit off.</summary>
public sealed class RateLimitOptions
{
    public const string Section = "RateLimits";

    /// <summary>
    /// Every anonymous request that writes (/auth/github, its callback, /admin/login), per client address or IPv6 /64
    /// (a login is two requests).
    /// </summary>
    public int LoginPerClientPerMinute { get; set; } = 120;

    /// <summary>Logins started for one instance, from all clients together.</summary>
    public int LoginPerInstancePerMinute { get; set; } = 3000;

    /// <summary>/api/v1/user/me per client address.</summary>
    public int UserInfoPerClientPerMinute { get; set; } = 600;

    /// <summary>Requests at the token endpoint (/oauth/token) per client address.</summary>
    public int TokenPerClientPerMinute { get; set; } = 600;

    /// <summary>Logins started within one login lifetime (10 minutes), from all clients together.</summary>
    public int PendingLogins { get; set; } = 100_000;
}

/// <summary>
/// The framework's rate limiter, as one chain: per client on the login endpoints, per instance on login starts, per
/// client on the user endpoint. A refused request gets 429 with Retry-After.
/// </summary>
public static class RateLimits
{
    public static IServiceCollection AddBrokerRateLimits(this IServiceCollection services)
    {
        services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.Section)
            .Validate(options => options.LoginPerClientPerMinute >= 0 && options.LoginPerInstancePerMinute >= 0 && options.UserInfoPerClientPerMinute >= 0 && options.TokenPerClientPerMinute >= 0 && options.PendingLogins >= 0, "RateLimits values must be 0 (off) or more.")
            .ValidateOnStart();
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<RateLimitOptions>>((limiter, limits) =>
        {
            var budgets = limits.Value;
            limiter.GlobalLimiter = PartitionedRateLimiter.CreateChained(
                PerClient(WritesAnonymously, "login", budgets.LoginPerClientPerMinute),
                PerInstance(budgets.LoginPerInstancePerMinute),
                PerClient(context => context.Request.Path.StartsWithSegments("/api/v1/user/me", StringComparison.Ordinal), "userinfo", budgets.UserInfoPerClientPerMinute),
                PerClient(context => context.Request.Path.StartsWithSegments("/oauth", StringComparison.Ordinal), "token", budgets.TokenPerClientPerMinute));
            limiter.OnRejected = RejectAsync;
        });
        return services;
    }

    private static PartitionedRateLimiter<HttpContext> PerClient(Func<HttpContext, bool> applies, string name, int perMinute) =>
        PartitionedRateLimiter.Create<HttpContext, string>(context =>
            perMinute > 0 && applies(context)
                ? RateLimitPartition.GetFixedWindowLimiter($"{name}:{ClientAddress.RateLimitKey(context.Connection.RemoteIpAddress)}", _ => Window(perMinute))
                : RateLimitPartition.GetNoLimiter(""));

    // Each of these writes a pending login or an audit row for anyone who asks, signed in or not.
    private static bool WritesAnonymously(HttpContext context) =>
        context.Request.Path.StartsWithSegments("/auth/github", StringComparison.Ordinal)
        || context.Request.Path.StartsWithSegments("/admin/login", StringComparison.Ordinal)
        || context.Request.Path.StartsWithSegments("/oauth/authorize", StringComparison.Ordinal)
        || context.Request.Path.StartsWithSegments("/account/sign-in", StringComparison.Ordinal)
        || context.Request.Path.StartsWithSegments("/account/disconnect", StringComparison.Ordinal);

    private static PartitionedRateLimiter<HttpContext> PerInstance(int perMinute) =>
        PartitionedRateLimiter.Create<HttpContext, string>(context =>
        {
            if (perMinute > 0 && context.Request.Path.Equals("/auth/github", StringComparison.Ordinal)
                && context.RequestServices.GetRequiredService<AllowlistProvider>().Current.TryMatch(context.Request.Query["redirect_uri"].ToString(), out var target, out _))
            {
                return RateLimitPartition.GetFixedWindowLimiter("instance:" + target.Instance.Id, _ => Window(perMinute));
            }

            return RateLimitPartition.GetNoLimiter("");
        });

    private static FixedWindowRateLimiterOptions Window(int perMinute) =>
        new() { PermitLimit = perMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0, AutoReplenishment = true };

    /// <summary>Retry-After in whole seconds, at least one: a client told to retry at once would only hammer again.</summary>
    public static void SetRetryAfter(HttpResponse response, TimeSpan wait)
    {
        ArgumentNullException.ThrowIfNull(response);
        response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
    }

    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var response = rejected.HttpContext.Response;
        var path = rejected.HttpContext.Request.Path;
        rejected.HttpContext.RequestServices.GetRequiredService<Telemetry.BrokerMetrics>().RateLimited(
            path.StartsWithSegments("/auth", StringComparison.Ordinal) ? "login" : path.StartsWithSegments("/admin", StringComparison.Ordinal) ? "admin" : "api");
        response.StatusCode = StatusCodes.Status429TooManyRequests;
        SetRetryAfter(response, rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1));
        var refusal = Refusal.For(rejected.HttpContext.Request, "Too many requests", "Too many requests from this address or for this application; try again shortly.", StatusCodes.Status429TooManyRequests);
        await refusal.ExecuteAsync(rejected.HttpContext);
    }
}
