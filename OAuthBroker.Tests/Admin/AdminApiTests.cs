using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Admin;

public sealed class AdminApiTests : FakeGitHubTest
{
    private const string ApiToken = "test-admin-token-0123456789abcdef0123456789";
    private BrokerFactory broker = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        GitHub.User = GitHub.User with { Login = "octo-admin" };
        broker = new BrokerFactory(GitHub, Folder, Instances.Json, new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = "https://broker.test",
            ["Admin:ApiToken"] = ApiToken,
            ["Admin:GitHubLogins:0"] = "Octo-Admin",
        });
    }

    public override async Task DisposeAsync()
    {
        await broker.DisposeAsync();
        await base.DisposeAsync();
    }

    public static TheoryData<string, string> AdminRoutes => new()
    {
        { "GET", "/admin" },
        { "GET", "/admin/instances/trackeep-home" },
        { "POST", "/admin/instances" },
        { "POST", "/admin/instances/trackeep-home" },
        { "POST", "/admin/instances/trackeep-home/delete" },
        { "POST", "/admin/instances/trackeep-home/disable" },
        { "POST", "/admin/instances/trackeep-home/enable" },
        { "POST", "/admin/logout" },
        { "GET", "/admin/api/instances" },
        { "GET", "/admin/api/instances/trackeep-home" },
        { "POST", "/admin/api/instances" },
        { "PUT", "/admin/api/instances/trackeep-home" },
        { "DELETE", "/admin/api/instances/trackeep-home" },
        { "POST", "/admin/api/instances/trackeep-home/disable" },
        { "POST", "/admin/api/instances/trackeep-home/enable" },
        { "GET", "/admin/api/allowlist/check?uri=https%3A%2F%2Fx" },
        { "GET", "/admin/api/audit" },
        { "GET", "/admin/api/csrf" },
    };

    [Theory]
    [MemberData(nameof(AdminRoutes))]
    public async Task Every_admin_route_is_refused_without_credentials_or_with_a_wrong_token(string method, string path)
    {
        var before = File.ReadAllBytes(broker.AllowlistPath);
        foreach (var token in new string?[] { null, "wrong-token", ApiToken + "x" })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = JsonContent.Create(new { id = "x" }) };
            if (token is not null)
            {
                request.Headers.Authorization = new("Bearer", token);
            }

            using var response = await Client().SendAsync(request);

            if (path.StartsWith("/admin/api", StringComparison.Ordinal))
            {
                response.StatusCode.Should().Be(HttpStatusCode.Unauthorized, $"{method} {path} with {token ?? "nothing"}");
            }
            else
            {
                response.StatusCode.Should().BeOneOf(HttpStatusCode.Unauthorized, HttpStatusCode.Found);
                if (response.StatusCode == HttpStatusCode.Found)
                {
                    response.Headers.Location!.ToString().Should().Be("/admin/login");
                }
            }
        }

        File.ReadAllBytes(broker.AllowlistPath).Should().Equal(before);
    }

    [Fact]
    public async Task Admin_does_not_exist_when_neither_GitHub_admins_nor_a_token_are_configured()
    {
        await using var plain = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json);
        using var client = plain.CreateClient(new() { AllowAutoRedirect = false });

        foreach (var path in new[] { "/admin", "/admin/login", "/admin/api/instances" })
        {
            (await client.GetAsync(path)).StatusCode.Should().Be(HttpStatusCode.NotFound, path);
        }
    }

    [Fact]
    public async Task The_token_may_be_configured_as_its_SHA256()
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ApiToken)));
        await using var hashed = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json, new Dictionary<string, string?> { ["Admin:ApiToken"] = "sha256:" + hash });
        using var client = hashed.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);

        (await client.GetAsync("/admin/api/instances")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_short_plain_token_stops_start_up()
    {
        using var weak = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json, new Dictionary<string, string?> { ["Admin:ApiToken"] = "short" });

        StartupFailure.Of(weak).Should().Contain("Admin:ApiToken must be at least 32 characters");
    }

    [Fact]
    public async Task List_returns_the_instances_with_an_ETag_and_never_a_shared_secret()
    {
        using var response = await Api().GetAsync("/admin/api/instances");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var body = await response.Content.ReadAsStringAsync();
        var etag = response.Headers.ETag!.Tag;
        etag.Should().Be($"\"{Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(broker.AllowlistPath)))}\"");
        body.Should().Contain("trackeep-home").And.Contain("(redacted; sha256");
        body.Should().NotContain((string)Instances.Loopback.PublicJwk["k"]);
    }

    [Fact]
    public async Task Create_writes_the_file_is_served_at_once_and_is_audited()
    {
        var api = Api();
        var etag = await ETagAsync(api);
        api.DefaultRequestHeaders.Add("X-Forwarded-For", "203.0.113.7");

        using var created = await SendAsync(api, HttpMethod.Post, "/admin/api/instances", NewEntry("api-made", "https://api-made.example.com/cb"), etag);

        created.StatusCode.Should().Be(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        created.Headers.Location!.ToString().Should().Be("/admin/api/instances/api-made");
        created.Headers.ETag!.Tag.Should().NotBe(etag);
        (await broker.ReadStoredAllowlistAsync()).Should().Contain("api-made");
        using var browser = broker.NewBrowser("https://localhost");
        await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(2), async () =>
        {
            using var start = await browser.StartAsync("https://api-made.example.com/cb");
            return start.StatusCode == HttpStatusCode.Redirect;
        });

        (await browser.LoginAsync("https://api-made.example.com/cb")).Query.Should().ContainKey("token");
        var audit = await api.GetFromJsonAsync<JsonObject>("/admin/api/audit?kind=admin");
        var change = audit!["events"]!.AsArray().Single(e => (string?)e!["action"] == "create")!;
        ((string?)change["actor"]).Should().Be("api-token");
        ((string?)change["instanceId"]).Should().Be("api-made");
        change["before"].Should().BeNull();
        ((string?)change["after"]!["encryptionKey"]!["k"]).Should().StartWith("(redacted");
        ((string?)change["clientIp"]).Should().Be("203.0.113.7", "X-Forwarded-For is believed from a loopback proxy");
    }

    [Fact]
    public async Task A_write_with_a_stale_If_Match_gets_412_and_changes_nothing()
    {
        var api = Api();
        var stale = await ETagAsync(api);
        (await SendAsync(api, HttpMethod.Delete, "/admin/api/instances/legacy-rsa", null, stale)).StatusCode.Should().Be(HttpStatusCode.NoContent);
        var before = File.ReadAllBytes(broker.AllowlistPath);

        using var response = await SendAsync(api, HttpMethod.Post, "/admin/api/instances", NewEntry("late-writer", "https://late.example.com/cb"), stale);

        response.StatusCode.Should().Be(HttpStatusCode.PreconditionFailed);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        File.ReadAllBytes(broker.AllowlistPath).Should().Equal(before);
    }

    [Fact]
    public async Task A_write_without_If_Match_gets_428()
    {
        using var response = await SendAsync(Api(), HttpMethod.Post, "/admin/api/instances", NewEntry("no-etag", "https://no-etag.example.com/cb"), ifMatch: null);

        response.StatusCode.Should().Be((HttpStatusCode)428);
    }

    [Theory]
    [InlineData("""{ "id": "bad", "redirectUris": ["http://bad.example.com/cb"], "deliverAccessToken": false }""", "redirectUris[0]", "must use https")]
    [InlineData("""{ "id": "bad", "redirectUris": ["https://bad.example.com/cb"] }""", "encryptionKey", "is needed")]
    [InlineData("""{ "id": "bad", "redirectUris": ["https://bad.example.com/cb"], "scopes": ["ADMIN"], "deliverAccessToken": false }""", "scopes", "invalid GitHub scope")]
    [InlineData("""{ "id": "bad", "redirectUris": ["https://bad.example.com/cb"], "deliverAccessToken": false, "extra": 1 }""", "extra", "not valid")]
    [InlineData("""{ "id": "bad", "redirectUris": ["https://trackeep.example.com/auth/callback"], "deliverAccessToken": false }""", "allowlist", "already registered")]
    public async Task An_invalid_instance_gets_problem_details_that_name_the_field(string entry, string field, string message)
    {
        var api = Api();

        using var response = await SendAsync(api, HttpMethod.Post, "/admin/api/instances", JsonNode.Parse(entry)!.AsObject(), await ETagAsync(api));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        string.Join(" ", problem["errors"]![field]!.AsArray().Select(m => (string?)m)).Should().Contain(message);
    }

    [Fact]
    public async Task Creating_an_existing_id_gets_409()
    {
        var api = Api();

        using var response = await SendAsync(api, HttpMethod.Post, "/admin/api/instances", NewEntry("trackeep-home", "https://other.example.com/cb"), await ETagAsync(api));

        response.StatusCode.Should().Be(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Replace_and_delete_work_and_unknown_ids_get_404()
    {
        var api = Api();
        var replacement = NewEntry("direct-app", "https://direct.example.org/cb", "https://direct.example.org/cb2");

        using var replaced = await SendAsync(api, HttpMethod.Put, "/admin/api/instances/direct-app", replacement, await ETagAsync(api));
        replaced.StatusCode.Should().Be(HttpStatusCode.OK);
        (await api.GetFromJsonAsync<JsonObject>("/admin/api/instances/direct-app"))!["redirectUris"]!.AsArray().Should().HaveCount(2);

        (await SendAsync(api, HttpMethod.Delete, "/admin/api/instances/direct-app", null, await ETagAsync(api))).StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await api.GetAsync("/admin/api/instances/direct-app")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await SendAsync(api, HttpMethod.Delete, "/admin/api/instances/direct-app", null, await ETagAsync(api))).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Check_reports_the_accepting_entry_or_the_reason()
    {
        var api = Api();

        var accepted = await api.GetFromJsonAsync<JsonObject>("/admin/api/allowlist/check?uri=" + Uri.EscapeDataString("https://t7.tenants.example.net/auth/callback"));
        var refused = await api.GetFromJsonAsync<JsonObject>("/admin/api/allowlist/check?uri=" + Uri.EscapeDataString("https://trackeep.example.com/auth/callback?x=1"));

        ((bool)accepted!["accepted"]!).Should().BeTrue();
        ((string?)accepted["instanceId"]).Should().Be("tenants");
        ((string?)accepted["rule"]).Should().Contain("wildcard");
        ((bool)refused!["accepted"]!).Should().BeFalse();
        ((string?)refused["reason"]).Should().Contain("query");
    }

    [Fact]
    public async Task Audit_pages_through_login_attempts_with_filters()
    {
        using var browser = broker.NewBrowser("https://localhost");
        await browser.LoginAsync(StandardInstances.TrackeepCallback);
        await browser.LoginAsync("https://direct.example.org/cb");
        await browser.StartAsync("https://evil.example.com/cb");
        var api = Api();

        var succeeded = await api.GetFromJsonAsync<JsonObject>("/admin/api/audit?kind=login&outcome=succeeded");
        var refused = await api.GetFromJsonAsync<JsonObject>("/admin/api/audit?kind=login&outcome=refused");
        var forInstance = await api.GetFromJsonAsync<JsonObject>("/admin/api/audit?instance=direct-app");
        var first = await api.GetFromJsonAsync<JsonObject>("/admin/api/audit?kind=login&limit=1");
        var second = await api.GetFromJsonAsync<JsonObject>($"/admin/api/audit?kind=login&limit=1&before={(long)first!["nextBeforeId"]!}");

        succeeded!["events"]!.AsArray().Should().HaveCount(2).And.OnlyContain(e => (string?)e!["actor"] == "octo-admin");
        ((string?)refused!["events"]![0]!["reason"]).Should().Contain("not registered");
        forInstance!["events"]!.AsArray().Should().ContainSingle();
        ((long)second!["events"]![0]!["id"]!).Should().BeLessThan((long)first["events"]![0]!["id"]!);
    }

    [Fact]
    public async Task An_admin_signs_in_with_GitHub_gets_a_strict_session_cookie_and_needs_a_CSRF_token_to_write()
    {
        using var browser = broker.NewBrowser("https://localhost");
        using var start = await browser.Client.GetAsync("/admin/login");
        start.StatusCode.Should().Be(HttpStatusCode.Redirect);
        var callback = await Browser.ApproveAtGitHubAsync(start.Headers.Location!);
        using var signedIn = await browser.Client.GetAsync(new Uri(callback).PathAndQuery);

        signedIn.StatusCode.Should().Be(HttpStatusCode.OK, await signedIn.Content.ReadAsStringAsync());
        var cookie = signedIn.Headers.GetValues("Set-Cookie").Single(value => value.StartsWith("__Host-oab-admin=", StringComparison.Ordinal));
        cookie.Should().Contain("httponly").And.Contain("samesite=strict").And.Contain("secure").And.Contain("path=/");
        (await browser.Client.GetAsync("/admin/api/instances")).StatusCode.Should().Be(HttpStatusCode.OK);
        using var page = await browser.Client.GetAsync("/admin");
        (await page.Content.ReadAsStringAsync()).Should().Contain("Signed in as <strong>octo-admin</strong>", broker.Logs.AllText);

        var etag = await ETagAsync(browser.Client);
        using var withoutCsrf = await SendAsync(browser.Client, HttpMethod.Post, "/admin/api/instances", NewEntry("csrf-test", "https://csrf.example.com/cb"), etag);
        withoutCsrf.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await withoutCsrf.Content.ReadAsStringAsync()).Should().Contain("CSRF");
        (await broker.ReadStoredAllowlistAsync()).Should().NotContain("csrf-test");

        var csrf = await browser.Client.GetFromJsonAsync<JsonObject>("/admin/api/csrf");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/api/instances") { Content = JsonContent.Create(NewEntry("csrf-test", "https://csrf.example.com/cb")) };
        request.Headers.TryAddWithoutValidation("If-Match", etag);
        request.Headers.Add("X-CSRF-Token", (string)csrf!["token"]!);
        using var withCsrf = await browser.Client.SendAsync(request);
        withCsrf.StatusCode.Should().Be(HttpStatusCode.Created);

        var audit = await Api().GetFromJsonAsync<JsonObject>("/admin/api/audit?kind=admin");
        audit!["events"]!.AsArray().Select(e => ((string?)e!["action"], (string?)e["actor"])).Should().Contain([("create", "octo-admin"), ("sign_in", "octo-admin")]);
    }

    [Fact]
    public async Task A_GitHub_user_who_is_not_an_admin_is_refused_and_gets_no_session()
    {
        GitHub.User = FakeGitHubUser.Random();
        using var browser = broker.NewBrowser("https://localhost");
        using var start = await browser.Client.GetAsync("/admin/login");
        var callback = await Browser.ApproveAtGitHubAsync(start.Headers.Location!);

        using var refused = await browser.Client.GetAsync(new Uri(callback).PathAndQuery);

        refused.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        refused.Headers.TryGetValues("Set-Cookie", out var cookies);
        (cookies ?? []).Should().NotContain(value => value.StartsWith("__Host-oab-admin=", StringComparison.Ordinal) && !value.Contains("expires=Thu, 01 Jan 1970", StringComparison.Ordinal));
        (await browser.Client.GetAsync("/admin/api/instances")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    private HttpClient Client() => broker.CreateClient(new() { AllowAutoRedirect = false, BaseAddress = new Uri("https://localhost") });

    [Fact]
    [Trait(StoredIn.Trait, StoredIn.File)]
    public async Task A_write_waiting_for_the_CLI_lock_gives_up_with_its_request_and_writes_nothing()
    {
        // Over a real socket: a client that gives up closes its connection, which is what the server can notice.
        var port = LoopbackPort.Free();
        await using var served = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json, new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = $"http://127.0.0.1:{port}",
            ["Admin:ApiToken"] = ApiToken,
        });
        served.UseKestrel(port);
        served.StartServer();
        using var api = new HttpClient { BaseAddress = new Uri(served.PublicUrl) };
        api.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);
        var etag = await ETagAsync(api);
        await using (new FileStream(served.AllowlistPath + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            // The CLI holds the lock; the admin's client gives up while the request waits for it.
            using var givingUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            var send = async () => await SendAsync(api, HttpMethod.Post, "/admin/api/instances", NewEntry("waited", "https://waited.example.com/cb"), etag, givingUp.Token);
            await send.Should().ThrowAsync<OperationCanceledException>();
            // The server learns the client went away when its socket closes, which on a loaded machine can take longer
            // than the wait's 20 ms poll: the lock stays held until it surely has.
            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }

        // The lock is free now. A wait that did not end with its request would take it within its next 20 ms poll
        // and write; a second is many of those.
        await Task.Delay(TimeSpan.FromSeconds(1));
        File.ReadAllText(served.AllowlistPath).Should().NotContain("waited");
    }

    [Fact]
    public async Task A_write_that_waits_out_the_allowlist_lock_is_answered_503_with_Retry_After_and_writes_nothing()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var clocked = new BrokerFactory(GitHub, new TempDirectory(), Instances.Json, new Dictionary<string, string?>
        {
            ["Broker:PublicUrl"] = "https://broker.test",
            ["Admin:ApiToken"] = ApiToken,
        }, clock);
        using var api = clocked.CreateClient();
        api.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);
        api.DefaultRequestHeaders.Accept.ParseAdd("application/problem+json");
        var etag = await ETagAsync(api);
        var before = await clocked.ReadStoredAllowlistAsync();
        // Another writer holds the allowlist: the CLI's lock file with SQLite, the row lock of an edit with PostgreSQL
        // (waited for on the database's clock, so that wait takes its 10 s).
        await using (await HoldAllowlistAsync(clocked))
        {
            using var response = await WhileTheClockRunsAsync(clock, SendAsync(api, HttpMethod.Post, "/admin/api/instances", NewEntry("waited-out", "https://waited-out.example.com/cb"), etag));
            response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
            response.Headers.RetryAfter!.Delta.Should().Be(TimeSpan.FromSeconds(5));
            var problem = await response.Content.ReadFromJsonAsync<JsonObject>();
            ((string?)problem!["title"]).Should().Be("Allowlist busy");
            ((string?)problem["detail"]).Should().Contain("locked by another writer").And.Contain("nothing was written");
        }

        (await clocked.ReadStoredAllowlistAsync()).Should().Be(before);
    }

    private static async Task<IAsyncDisposable> HoldAllowlistAsync(BrokerFactory broker)
    {
        if (!broker.UsesPostgres)
        {
            return new FileStream(broker.AllowlistPath + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }

        var connection = broker.OpenDatabase();
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT sha256 FROM allowlist WHERE id = 1 FOR UPDATE";
        (await command.ExecuteScalarAsync()).Should().NotBeNull("the broker seeded the row at its start");
        return connection;
    }

    /// <summary>Moves the fake clock a lock poll at a time for up to 15 s while <paramref name="task"/> runs; a real-time bound keeps a regression from hanging.</summary>
    private static async Task<T> WhileTheClockRunsAsync<T>(Microsoft.Extensions.Time.Testing.FakeTimeProvider clock, Task<T> task)
    {
        await clock.AdvanceWhilePendingAsync(task, TimeSpan.FromSeconds(15), OAuthBroker.Allowlist.AllowlistLock.Poll);
        return await task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private HttpClient Api()
    {
        var client = Client();
        client.DefaultRequestHeaders.Authorization = new("Bearer", ApiToken);
        return client;
    }

    private static async Task<string> ETagAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/admin/api/instances");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return response.Headers.ETag!.Tag;
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, JsonObject? body, string? ifMatch, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return await client.SendAsync(request, cancellationToken);
    }

    private static JsonObject NewEntry(string id, params string[] redirectUris) => new()
    {
        ["id"] = id,
        ["redirectUris"] = new JsonArray([.. redirectUris.Select(uri => JsonValue.Create(uri))]),
        ["encryptionKey"] = JsonSerializer.SerializeToNode(InstanceKey.Oct().PublicJwk),
    };
}
