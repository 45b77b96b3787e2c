using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OAuthBroker.Admin;
using OAuthBroker.Broker;
using OpenTelemetry;
using OpenTelemetry.Context.Propagation;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace OAuthBroker.Telemetry;

/// <summary>Telemetry: a Prometheus scrape endpoint for admins.</summary>
public sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>Serves <c>/metrics</c> in Prometheus' text format, to the admin API token (Admin:ApiToken) only.</summary>
    public bool Prometheus { get; set; }
}

/// <summary>
/// OpenTelemetry traces and metrics: ASP.NET Core and HttpClient (the GitHub backchannel) instrumentation, the runtime's
/// own meters and the broker's (<see cref="BrokerMetrics"/>). OTLP export is on when the standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set; <c>/metrics</c> when Telemetry:Prometheus is true. Query strings (which carry
/// codes, states and redirect URIs) never reach a span, whatever OTEL_DOTNET_EXPERIMENTAL_* redaction settings say.
/// </summary>
public static class TelemetrySetup
{
    public const string ActivitySourceName = "OAuthBroker";

    /// <summary>
    /// ASP.NET Core's request log: each request's URL with its query, which at the callback holds GitHub's code and the
    /// login's state. Never written, whatever level the configuration asks for.
    /// </summary>
    public const string RequestLogCategory = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>The results' log, whose redirects print where the browser is sent: GitHub with the state, the instance with its token.</summary>
    public const string ResultLogCategory = "Microsoft.AspNetCore.Http.Result";

    public static WebApplicationBuilder AddTelemetry(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // Rules added here come after the configuration's, so they win over a LogLevel entry for the same category.
        // Without a request log, hosting also no longer starts an Activity for every request when nothing traces.
        builder.Logging.AddFilter(RequestLogCategory, LogLevel.None);
        builder.Logging.AddFilter(ResultLogCategory, LogLevel.Warning);
        // Registered as the console logger takes formatters, without AddConsoleFormatter's reflection-bound options.
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.Extensions.Logging.Console.ConsoleFormatter, JsonLineFormatter>());
        builder.Services.AddSingleton<IPostConfigureOptions<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>, JsonLineFormatterSelection>();
        builder.Services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.Section)
            .Validate<IOptions<AdminOptions>>((telemetry, admin) => !telemetry.Prometheus || !string.IsNullOrEmpty(admin.Value.ApiToken),
                "Telemetry:Prometheus serves /metrics to the admin API token: set Admin:ApiToken too (Prometheus sends it as a bearer token).")
            .ValidateOnStart();
        builder.Services.AddBrokerMetrics();

        var prometheus = builder.Configuration.GetValue<bool>($"{TelemetryOptions.Section}:{nameof(TelemetryOptions.Prometheus)}");
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        if (!prometheus && !otlp)
        {
            // Nothing would read them: no listener, and no cost on the login path beyond the meter's own counters.
            return builder;
        }

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? "oauthbroker"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(BrokerMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "System.Net.Http", "System.Runtime");
                if (prometheus)
                {
                    metrics.AddPrometheusExporter();
                }
            });
        if (otlp)
        {
            // OpenTelemetry injects trace headers into outgoing requests itself unless its propagator is the plain W3C
            // one; then the runtime's handler does, and the GitHub client's handler propagates nothing (GitHubSetup).
            Sdk.SetDefaultTextMapPropagator(new TraceContextPropagator());
            telemetry.WithTracing(tracing => tracing
                .AddSource(ActivitySourceName)
                .AddAspNetCoreInstrumentation(options =>
                {
                    options.Filter = context => !IsProbe(context.Request.Path);
                    options.EnrichWithHttpRequest = (activity, _) => activity.SetTag("url.query", null);
                })
                .AddHttpClientInstrumentation(options =>
                    options.EnrichWithHttpRequestMessage = (activity, request) =>
                        activity.SetTag("url.full", request.RequestUri is { } uri ? uri.GetLeftPart(UriPartial.Path) : null)));
            telemetry.UseOtlpExporter();
        }

        return builder;
    }

    /// <summary>The broker's instruments, for the service and the admin commands alike (the host provides the meter factory).</summary>
    public static IServiceCollection AddBrokerMetrics(this IServiceCollection services)
    {
        services.AddMetrics();
        services.TryAddSingleton<BrokerMetrics>();
        return services;
    }

    /// <summary>Maps <c>/metrics</c> behind the admin policy when Telemetry:Prometheus is true.</summary>
    public static IEndpointRouteBuilder MapTelemetry(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.ServiceProvider.GetRequiredService<IOptions<TelemetryOptions>>().Value.Prometheus)
        {
            endpoints.MapPrometheusScrapingEndpoint("/metrics").RequireAuthorization(AdminAuthentication.Policy);
        }

        return endpoints;
    }

    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/healthz", StringComparison.Ordinal) || path.StartsWithSegments("/readyz", StringComparison.Ordinal)
        || path.StartsWithSegments("/metrics", StringComparison.Ordinal);
}
