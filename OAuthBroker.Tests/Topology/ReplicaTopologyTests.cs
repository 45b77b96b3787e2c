using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Topology;

/// <summary>
/// Two replicas of the native executable on one PostgreSQL database, behind nginx's round robin, as the README's
/// deployment with PostgreSQL has them: any replica finishes a login another started, a token one issues verifies
/// through the other, a callback replayed on both at once gives one token, an edit or a key rotation made through one
/// reaches the other within 2 s, and a replica killed under load costs only its in-flight requests.
/// </summary>
public sealed class ReplicaTopologyTests : FakeGitHubTest
{
    private const string ApiToken = "topology-admin-token-0123456789abcdef01234567";

    private NativeBroker a = null!;
    private NativeBroker b = null!;
    private NginxProxy proxy = null!;
    private Dictionary<string, string?> settings = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var database = await (await PostgresCluster.GetAsync()).CreateDatabaseAsync();
        var proxyUrl = $"http://127.0.0.1:{LoopbackPort.Free()}";
        settings = new Dictionary<string, string?>
        {
            ["Broker:Database"] = "postgres",
            ["ConnectionStrings:Broker"] = database,
            // The URL browsers and instances see: the proxy's. Each replica listens on a port of its own.
            ["Broker:PublicUrl"] = proxyUrl,
            ["Admin:ApiToken"] = ApiToken,
        };
        a = await NativeBroker.StartAsync(GitHub, Replica("a"), Instances.Json, settings);
        b = await NativeBroker.StartAsync(GitHub, Replica("b"), Instances.Json, settings);
        proxy = await NginxProxy.StartAsync([a.PublicUrl, b.PublicUrl], new Uri(proxyUrl).Port);
    }

    public override async Task DisposeAsync()
    {
        await proxy.DisposeAsync();
        await b.DisposeAsync();
        await a.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task A_login_started_on_one_replica_finishes_on_the_other_and_its_token_verifies_through_the_proxy_and_the_other()
    {
        var (callback, cookie) = await HttpLogin.StartAndApproveAsync(a.PublicUrl, "s-1");

        using var back = await HttpLogin.ReturnAsync(b.PublicUrl, callback, cookie);

        back.StatusCode.Should().Be(HttpStatusCode.Redirect, await back.Content.ReadAsStringAsync());
        var query = QueryHelpers.ParseQuery(back.Headers.Location!.Query);
        query["state"].ToString().Should().Be("s-1");
        query["iss"].ToString().Should().Be(proxy.Url);
        var jwt = query["token"].ToString();
        using var http = new HttpClient();
        var jwks = new JsonWebKeySet(await http.GetStringAsync(proxy.Url + "/.well-known/jwks.json"));
        var validation = await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = proxy.Url,
            ValidAudience = "trackeep-home",
            IssuerSigningKeys = jwks.GetSigningKeys(),
        });
        validation.IsValid.Should().BeTrue(validation.Exception?.Message);
        foreach (var replica in new[] { a, b })
        {
            using var me = new HttpRequestMessage(HttpMethod.Get, replica.PublicUrl + "/api/v1/user/me");
            me.Headers.Authorization = new("Bearer", jwt);
            using var profile = await http.SendAsync(me);
            profile.StatusCode.Should().Be(HttpStatusCode.OK, "either replica knows the user and the key");
        }
    }

    [Fact]
    public async Task A_callback_replayed_100_times_at_once_across_both_replicas_gives_exactly_one_token()
    {
        var (callback, cookie) = await HttpLogin.StartAndApproveAsync(proxy.Url, "s-2");
        using var go = new ManualResetEventSlim();

        var replays = Enumerable.Range(0, 100).Select(i => Task.Run(async () =>
        {
            go.Wait();
            using var response = await HttpLogin.ReturnAsync(i % 2 == 0 ? a.PublicUrl : b.PublicUrl, callback, cookie);
            return response.Headers.Location is { } location && QueryHelpers.ParseQuery(location.Query).ContainsKey("token");
        })).ToList();
        go.Set();
        var tokens = await Task.WhenAll(replays);

        tokens.Count(token => token).Should().Be(1);
        GitHub.TokenCallCount.Should().Be(1, "the losers are refused before the broker talks to GitHub");
    }

    [Fact]
    public async Task Logins_through_the_proxy_reach_both_replicas_and_all_complete()
    {
        using var http = new HttpClient();
        for (var i = 0; i < 10; i++)
        {
            // Each login is two requests: another one now and then shifts the round robin, so callbacks reach both.
            if (i % 3 == 0)
            {
                (await http.GetAsync(proxy.Url + "/healthz")).EnsureSuccessStatusCode();
            }

            var (callback, cookie) = await HttpLogin.StartAndApproveAsync(proxy.Url, $"s-{i}");
            using var back = await HttpLogin.ReturnAsync(proxy.Url, callback, cookie);
            back.Headers.Location!.Query.Should().Contain("token=");
        }

        a.Output.Should().Contain("Login completed", "round robin sends callbacks to each replica");
        b.Output.Should().Contain("Login completed");
    }

    [Fact]
    public async Task A_key_rotated_with_now_through_one_replica_is_served_by_the_other_within_2_seconds_and_its_tokens_are_accepted()
    {
        using var http = new HttpClient();
        var before = await KeyIdsAsync(http, b.PublicUrl);
        var environment = FakeGitHub.AsEnvironment(GitHub.BrokerSettings().Concat(settings));
        environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        environment["Broker__AllowlistPath"] = Path.Combine(Folder.Path, "a", "allowed-redirects.json");

        var rotate = await BrokerProcess.RunToExitAsync(BrokerCommand.Native("keys", "rotate", "--now"), environment);

        rotate.ExitCode.Should().Be(0, rotate.Error);
        var rotated = System.Text.RegularExpressions.Regex.Match(rotate.Output, "New signing key (\\S+) ").Groups[1].Value;
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () =>
        {
            var keys = await KeyIdsAsync(http, b.PublicUrl);
            return keys.Contains(rotated) && !keys.Intersect(before).Any();
        })).Should().BeTrue("the rotation is announced to every replica (NOTIFY), not left to the 30-second refresh");
        var (callback, cookie) = await HttpLogin.StartAndApproveAsync(a.PublicUrl, "s-3");
        using var back = await HttpLogin.ReturnAsync(a.PublicUrl, callback, cookie);
        var jwt = QueryHelpers.ParseQuery(back.Headers.Location!.Query)["token"].ToString();
        new JsonWebToken(jwt).Kid.Should().Be(rotated);
        using var me = new HttpRequestMessage(HttpMethod.Get, b.PublicUrl + "/api/v1/user/me");
        me.Headers.Authorization = new("Bearer", jwt);
        (await http.SendAsync(me)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task An_instance_added_through_the_admin_API_on_one_replica_starts_logins_on_the_other_within_2_seconds()
    {
        const string callback = "https://added-on-a.example.com/auth/callback";
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        using var list = new HttpRequestMessage(HttpMethod.Get, a.PublicUrl + "/admin/api/instances");
        list.Headers.Authorization = new("Bearer", ApiToken);
        using var listed = await http.SendAsync(list);
        using var create = new HttpRequestMessage(HttpMethod.Post, a.PublicUrl + "/admin/api/instances")
        {
            Content = new StringContent($$"""{ "id": "added-on-a", "redirectUris": ["{{callback}}"], "deliverAccessToken": false }""", System.Text.Encoding.UTF8, "application/json"),
        };
        create.Headers.Authorization = new("Bearer", ApiToken);
        create.Headers.TryAddWithoutValidation("If-Match", listed.Headers.ETag!.Tag);

        using var created = await http.SendAsync(create);

        created.StatusCode.Should().Be(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () =>
        {
            using var start = await http.GetAsync(b.PublicUrl + Browser.StartUrl(callback, "s-4"));
            return start.StatusCode == HttpStatusCode.Redirect;
        })).Should().BeTrue("B applies A's edit when PostgreSQL announces it");
    }

    [Fact]
    public async Task SIGKILL_of_one_replica_during_500_logins_loses_only_its_in_flight_requests_and_it_rejoins()
    {
        const int logins = 500;
        const int concurrency = 16;
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<LoginOutcome>();
        var next = 0;
        var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) <= logins)
            {
                outcomes.Add(await TryLoginAsync(proxy.Url));
            }
        })).ToList();
        while (outcomes.Count < 150)
        {
            await Task.Delay(5);
        }

        var killedAt = outcomes.Count;
        var killed = new Uri(a.PublicUrl).Authority;
        await a.KillAsync();
        await Task.WhenAll(workers);

        outcomes.Should().HaveCount(logins);
        killedAt.Should().BeLessThan(logins - concurrency, "the replica is killed while logins are still running");
        var failures = outcomes.Where(outcome => !outcome.Token).ToList();
        failures.Count.Should().BeLessThanOrEqualTo(concurrency, "only requests in flight on the killed replica may fail (killed after {0} logins)", killedAt);
        failures.Where(failure => !failure.Upstream.Contains(killed, StringComparison.Ordinal)).Should().BeEmpty("a login that never touched the killed replica completes");
        outcomes.Where(outcome => outcome.Upstream == new Uri(b.PublicUrl).Authority && !outcome.Token).Should().BeEmpty("every callback that reached B alone completes");
        GitHub.TokenCallCount.Should().BeInRange(logins - failures.Count, logins, "each login's code is redeemed at most once");

        a = await NativeBroker.StartAsync(GitHub, Replica("a"), Instances.Json, settings, port: new Uri(a.PublicUrl).Port);
        var (callback, cookie) = await HttpLogin.StartAndApproveAsync(b.PublicUrl, "s-5");
        using var back = await HttpLogin.ReturnAsync(a.PublicUrl, callback, cookie);
        back.Headers.Location!.Query.Should().Contain("token=", "the restarted replica finishes a login the other started");
    }

    private sealed record LoginOutcome(bool Token, string Upstream, string Detail);

    /// <summary>One login through <paramref name="baseUrl"/>, reporting instead of asserting: under load some may fail.</summary>
    private static async Task<LoginOutcome> TryLoginAsync(string baseUrl)
    {
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
        var upstream = "";
        try
        {
            using var start = await http.GetAsync(baseUrl + Browser.StartUrl(StandardInstances.TrackeepCallback, "load"));
            upstream = Upstream(start);
            if (start.StatusCode != HttpStatusCode.Redirect)
            {
                return new LoginOutcome(false, upstream, $"start: {(int)start.StatusCode}");
            }

            var cookie = start.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
            var callback = await Browser.ApproveAtGitHubAsync(start.Headers.Location!);
            using var back = await HttpLogin.ReturnAsync(baseUrl, callback, cookie);
            upstream = Upstream(back);
            var token = back.Headers.Location is { } location && QueryHelpers.ParseQuery(location.Query).ContainsKey("token");
            return new LoginOutcome(token, upstream, $"callback: {(int)back.StatusCode}");
        }
        catch (HttpRequestException exception)
        {
            return new LoginOutcome(false, upstream, exception.Message);
        }
    }

    private static string Upstream(HttpResponseMessage response) =>
        response.Headers.TryGetValues("X-Upstream", out var values) ? string.Join(", ", values) : "";

    private static async Task<List<string>> KeyIdsAsync(HttpClient http, string baseUrl) =>
        [.. new JsonWebKeySet(await http.GetStringAsync(baseUrl + "/.well-known/jwks.json")).Keys.Select(key => key.Kid)];

    private string Replica(string name)
    {
        var folder = Path.Combine(Folder.Path, name);
        Directory.CreateDirectory(folder);
        return folder;
    }
}
