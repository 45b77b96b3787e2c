using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Observability;

/// <summary>
/// OpenTelemetry on the builds users run (the dll and the native executable, as processes): /metrics for the admin
/// token counts logins by instance and outcome, GitHub calls by endpoint and database operations; OTLP export carries
/// the login's server and backchannel spans; no token, code, state or secret reaches either.
/// </summary>
public sealed partial class TelemetryTests : FakeGitHubTest
{
    private const string ApiToken = "telemetry-admin-token-0123456789abcdef012345";

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task Metrics_scraped_after_logins_count_them_by_instance_outcome_and_endpoint_for_the_admin_token_only(string build)
    {
        var environment = BrokerEnvironment.For(GitHub, Folder.Path, Instances.Json);
        var url = environment["Urls"]!;
        environment["Telemetry__Prometheus"] = "true";
        environment["Admin__ApiToken"] = ApiToken;
        await using var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), url, environment);
        var flows = new List<(string State, string Code)>();
        for (var i = 0; i < 3; i++)
        {
            flows.Add(await LoginAsync(url));
        }

        // A replay of a used callback: refused, and counted as such.
        await ReplayAsync(url);

        using var http = new HttpClient();
        using (var anonymous = await http.GetAsync(url + "/metrics"))
        {
            anonymous.StatusCode.Should().Be(HttpStatusCode.Unauthorized, "a scraper gets 401, not the admin page's sign-in redirect");
        }

        http.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);
        var scrape = "";
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), async () =>
        {
            scrape = await http.GetStringAsync(url + "/metrics");
            return Value(scrape, "oauthbroker_logins_finished_total", "instance=\"trackeep-home\"", "outcome=\"succeeded\"") == 4;
        })).Should().BeTrue(scrape);

        Value(scrape, "oauthbroker_logins_started_total", "instance=\"trackeep-home\"").Should().Be(4);
        Value(scrape, "oauthbroker_logins_finished_total", "outcome=\"refused\"").Should().Be(1);
        Value(scrape, "oauthbroker_github_request_duration_seconds_count", "endpoint=\"token\"", "outcome=\"ok\"").Should().Be(4);
        Value(scrape, "oauthbroker_github_request_duration_seconds_count", "endpoint=\"user\"", "outcome=\"ok\"").Should().Be(4);
        Value(scrape, "oauthbroker_db_operation_duration_seconds_count", "operation=\"pending_login_consume\"").Should().Be(5, "four logins and the replay each make one look-up-and-consume");
        scrape.Should().Contain("http_server_request_duration_seconds", "ASP.NET Core's own meters are exported too");
        foreach (var secret in GitHub.Secrets.Concat(flows.SelectMany(flow => new[] { flow.State, flow.Code })).Append(ApiToken))
        {
            scrape.Should().NotContain(secret);
        }
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task OTLP_export_carries_the_login_and_its_GitHub_calls_and_no_secret(string build)
    {
        await using var collector = await FakeOtlpCollector.StartAsync();
        var environment = BrokerEnvironment.For(GitHub, Folder.Path, Instances.Json);
        var url = environment["Urls"]!;
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Url;
        environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        environment["OTEL_BSP_SCHEDULE_DELAY"] = "100";
        environment["OTEL_METRIC_EXPORT_INTERVAL"] = "200";
        // Even with the instrumentation's own query redaction switched off, no query string reaches a span.
        environment["OTEL_DOTNET_EXPERIMENTAL_ASPNETCORE_DISABLE_URL_QUERY_REDACTION"] = "true";
        environment["OTEL_DOTNET_EXPERIMENTAL_HTTPCLIENT_DISABLE_URL_QUERY_REDACTION"] = "true";
        await using var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), url, environment);

        var (state, code) = await LoginAsync(url);

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(10), () => Task.FromResult(
            collector.Holds("traces", "/auth/github/callback") && collector.Holds("traces", "/login/oauth/access_token") && collector.Holds("metrics", "oauthbroker.logins.finished"))))
            .Should().BeTrue($"the server span, the backchannel span and the broker's metrics are exported: {string.Join(", ", collector.Received.Select(item => item.Signal))}\n{broker.Output}{broker.Error}");
        foreach (var secret in GitHub.Secrets.Append(state).Append(code).Append(Uri.EscapeDataString(StandardInstances.TrackeepCallback)))
        {
            collector.HoldsAnywhere(secret).Should().BeFalse($"'{secret[..Math.Min(6, secret.Length)]}…' must not be exported");
        }

        GitHub.RequestsWithTraceContext.Should().Be(0, "the broker traces its GitHub calls without sending its trace ids to GitHub");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task At_every_log_level_no_request_URL_or_redirect_with_a_code_state_or_token_is_logged_nor_trace_ids_sent_to_GitHub(string build)
    {
        var environment = BrokerEnvironment.For(GitHub, Folder.Path, Instances.Json);
        var url = environment["Urls"]!;
        // An operator chasing a problem turns everything up, ASP.NET Core's own request and result logs included.
        environment["Logging__LogLevel__Default"] = "Trace";
        environment["Logging__LogLevel__Microsoft.AspNetCore"] = "Trace";
        environment["Logging__LogLevel__Microsoft.AspNetCore.Hosting.Diagnostics"] = "Trace";
        environment["Logging__LogLevel__Microsoft.AspNetCore.Http.Result"] = "Trace";
        await using var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), url, environment);

        var (callback, cookie) = await HttpLogin.StartAndApproveAsync(url);
        using var back = await HttpLogin.ReturnAsync(url, callback, cookie);
        var token = QueryHelpers.ParseQuery(back.Headers.Location!.Query)["token"].ToString();
        token.Should().NotBeEmpty();
        var query = QueryHelpers.ParseQuery(new Uri(callback).Query);

        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(5), () => Task.FromResult(broker.Output.Contains("Login completed", StringComparison.Ordinal))))
            .Should().BeTrue("the log at Trace is real output:\n" + broker.Output);
        var log = broker.Output + broker.Error;
        log.Should().Contain("dbug:", "Debug entries are written, so the levels took effect");
        foreach (var secret in GitHub.Secrets.Append(query["state"].ToString()).Append(query["code"].ToString()).Append(token).Append(token.Split('.')[2]))
        {
            log.Should().NotContain(secret, $"'{secret[..Math.Min(6, secret.Length)]}…' must not be logged");
        }

        GitHub.RequestsWithTraceContext.Should().Be(0, "no trace header reaches GitHub");
    }

    [Fact]
    public async Task Prometheus_without_an_admin_token_stops_start_up_and_says_why()
    {
        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?> { ["Telemetry:Prometheus"] = "true" });

        StartupFailure.Of(broker).Should().Contain("Telemetry:Prometheus").And.Contain("Admin:ApiToken");
    }

    /// <summary>One login; returns the broker's state and GitHub's code, which no telemetry may carry.</summary>
    private static async Task<(string State, string Code)> LoginAsync(string url)
    {
        var (callback, cookie) = await HttpLogin.StartAndApproveAsync(url);
        using var back = await HttpLogin.ReturnAsync(url, callback, cookie);
        back.Headers.Location!.Query.Should().Contain("token=");
        var query = QueryHelpers.ParseQuery(new Uri(callback).Query);
        return (query["state"].ToString(), query["code"].ToString());
    }

    private static async Task ReplayAsync(string url)
    {
        var (callback, cookie) = await HttpLogin.StartAndApproveAsync(url);
        using (var first = await HttpLogin.ReturnAsync(url, callback, cookie))
        {
            first.StatusCode.Should().Be(HttpStatusCode.Redirect);
        }

        using var again = await HttpLogin.ReturnAsync(url, callback, cookie);
        again.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    /// <summary>The sum of the samples of <paramref name="metric"/> whose labels include every one of <paramref name="labels"/>.</summary>
    private static double Value(string scrape, string metric, params string[] labels) =>
        Sample().Matches(scrape)
            .Where(match => match.Groups["name"].Value == metric && labels.All(label => match.Groups["labels"].Value.Contains(label, StringComparison.Ordinal)))
            .Sum(match => double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture));

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?<labels>[^}]*)\} (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex Sample();
}
