using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace OAuthBroker.Web;

/// <summary>Bounds on every input: request line, headers, bodies, forms, query strings.</summary>
public static class RequestLimits
{
    public const int MaxQueryStringLength = 4096;
    public const long MaxBodyBytes = 1024 * 1024;

    public static IServiceCollection AddRequestLimits(this IServiceCollection services)
    {
        services.Configure<KestrelServerOptions>(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestLineSize = 8 * 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            kestrel.Limits.MaxRequestHeaderCount = 64;
            kestrel.Limits.MaxRequestBodySize = MaxBodyBytes;
        });
        services.Configure<FormOptions>(form =>
        {
            form.ValueCountLimit = 64;
            form.ValueLengthLimit = 64 * 1024;
            form.KeyLengthLimit = 256;
            form.MultipartBodyLengthLimit = MaxBodyBytes;
        });
        return services;
    }

    /// <summary>Refuses over-long query strings (414) before any endpoint parses them.</summary>
    public static IApplicationBuilder UseRequestLimits(this IApplicationBuilder app) =>
        app.Use(async (context, next) =>
        {
            if (context.Request.QueryString.Value?.Length > MaxQueryStringLength)
            {
                await Refusal.For(context.Request, "Request too long", $"The query string is longer than {MaxQueryStringLength} characters.", StatusCodes.Status414UriTooLong).ExecuteAsync(context);
                return;
            }

            await next(context);
        });
}
