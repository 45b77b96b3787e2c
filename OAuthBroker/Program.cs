using OAuthBroker.Account;
using OAuthBroker.Admin;
using OAuthBroker.Allowlist;
using OAuthBroker.Audit;
using OAuthBroker.Broker;
using OAuthBroker.Cli;
using OAuthBroker.Demo;
using OAuthBroker.GitHub;
using OAuthBroker.Health;
using OAuthBroker.Lifecycle;
using OAuthBroker.Login;
using OAuthBroker.Oidc;
using OAuthBroker.Storage;
using OAuthBroker.Telemetry;
using OAuthBroker.Tokens;
using OAuthBroker.Users;
using OAuthBroker.Web;
using OAuthBroker.Webhooks;

var invocation = BrokerInvocation.Parse(args);
if (invocation.Kind != InvocationKind.Serve)
{
    return await BrokerCommandLine.RunAsync(invocation, args);
}

WebApplicationBuilder? builder = null;
var started = false;
try
{
    // Settings are read once and validated at start-up; a reload would not reach them. Watching for one would also put a
    // recursive file watcher on the content root, which wakes on every database write when the data folder sits under it.
    builder = WebApplication.CreateBuilder(["--hostBuilder:reloadConfigOnChange=false", .. invocation.HostArguments]);
    builder.Configuration.AddBuiltInDefaults();
    builder.ReportStartupFailuresOnce();

    builder.Services
        .AddProblemDetails()
        .AddBrokerJson()
        .AddBrokerOptions()
        .AddStorage()
        .AddAllowlist()
        .AddGitHub()
        .AddTokens()
        .AddUsers()
        .AddAudit()
        .AddAdmin()
        .AddClientAddress()
        .AddRequestLimits()
        .AddBrokerRateLimits()
        .AddLogin()
        .AddLifecycle()
        .AddOidc()
        .AddWebhooks();
    builder.AddDemo(invocation.Demo);
    builder.AddTelemetry();

    var app = builder.Build();
    app.Lifetime.ApplicationStarted.Register(() => started = true);

    app.UseForwardedHeaders();
    app.UseBrokerPathBase();
    app.UseExceptionHandler();
    app.UseSecurityHeaders();
    app.UseRequestLimits();
    app.UseRateLimiter();
    app.UseAuthentication();
    app.UseAuthorization();
    app.MapLogin();
    app.MapTokens();
    app.MapUsers();
    app.MapLifecycle();
    app.MapAccount();
    app.MapOidc();
    app.MapWebhooks();
    app.MapHealth();
    app.MapPageAssets();
    app.MapAdmin();
    app.MapDemo();
    app.MapTelemetry();

    await app.RunAsync();
    return 0;
}
catch (Exception exception) when (!started && StartupFailureReporter.OwnsTheProcess && StartupFailureReporter.IsReported(exception))
{
    // A setting, file, folder or port the operator must fix: a few lines naming it, not a crash.
    return StartupFailureReporter.Report(exception, Console.Error, StartupFailureReporter.ShowsStackTrace(builder?.Configuration));
}

/// <summary>The entry point, public so tests can host the real application.</summary>
public partial class Program;
