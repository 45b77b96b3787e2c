// The cost floor of the broker's hop pattern: the same requests (start -> GitHub authorize -> callback -> code
// exchange -> GET /user -> GET /user/emails when the address is private -> redirect to the instance), with nothing
// else. No allowlist, no database, no crypto, no PKCE, state in a plain cookie. Not secure and not meant to be: it
// exists to be measured beside the real broker.
// With Reference:InstanceKey (an RSA public JWK) it also does the two operations no broker design can skip: the
// token encrypted to the instance (JWE) inside a signed JWT (ES256), with the broker's libraries and a
// subset of its claims.
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using ReferenceBroker;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Services.AddHttpClient("github", client => client.DefaultRequestHeaders.UserAgent.ParseAdd("reference-broker"));
var app = builder.Build();
var gitHub = app.Configuration["GitHub:BaseUrl"]!;
var api = app.Configuration["GitHub:ApiUrl"]!;
var publicUrl = app.Configuration["PublicUrl"]!;
var tokenCrypto = app.Configuration["Reference:InstanceKey"] is { } instanceKey ? new TokenCrypto(instanceKey, publicUrl) : null;

app.MapGet("/auth/github", (HttpContext context) =>
{
    var state = Guid.NewGuid().ToString("N");
    context.Response.Cookies.Append("ref-state", state + "|" + context.Request.Query["redirect_uri"] + "|" + context.Request.Query["state"]);
    return Results.Redirect(QueryHelpers.AddQueryString(gitHub + "/login/oauth/authorize", new Dictionary<string, string?>
    {
        ["client_id"] = app.Configuration["GitHub:ClientId"], ["redirect_uri"] = publicUrl + "/auth/github/callback", ["scope"] = "read:user user:email", ["state"] = state,
    }));
});

app.MapGet("/auth/github/callback", async (HttpContext context, IHttpClientFactory clients) =>
{
    var saved = (context.Request.Cookies["ref-state"] ?? "").Split('|');
    if (saved.Length != 3 || saved[0] != context.Request.Query["state"])
    {
        return Results.BadRequest();
    }

    var http = clients.CreateClient("github");
    using var exchange = Request(HttpMethod.Post, gitHub + "/login/oauth/access_token");
    exchange.Content = new FormUrlEncodedContent(new Dictionary<string, string>
    {
        ["client_id"] = app.Configuration["GitHub:ClientId"]!, ["client_secret"] = app.Configuration["GitHub:ClientSecret"]!,
        ["code"] = context.Request.Query["code"].ToString(), ["redirect_uri"] = publicUrl + "/auth/github/callback",
    });
    exchange.Headers.Accept.ParseAdd("application/json");
    using var tokenResponse = await http.SendAsync(exchange);
    using var token = JsonDocument.Parse(await tokenResponse.Content.ReadAsStringAsync());
    var accessToken = token.RootElement.GetProperty("access_token").GetString();

    using var userRequest = Request(HttpMethod.Get, api + "/user");
    userRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
    using var userResponse = await http.SendAsync(userRequest);
    using var user = JsonDocument.Parse(await userResponse.Content.ReadAsStringAsync());

    // The same hop as the broker: a private address is read from /user/emails.
    if (user.RootElement.GetProperty("email").ValueKind == JsonValueKind.Null)
    {
        using var emailsRequest = Request(HttpMethod.Get, api + "/user/emails");
        emailsRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        using var emailsResponse = await http.SendAsync(emailsRequest);
        using var emails = JsonDocument.Parse(await emailsResponse.Content.ReadAsStringAsync());
    }

    return Results.Redirect(QueryHelpers.AddQueryString(saved[1], new Dictionary<string, string?>
    {
        ["token"] = tokenCrypto?.Issue(accessToken!, user.RootElement) ?? accessToken, ["user"] = user.RootElement.GetProperty("login").GetString(), ["state"] = saved[2],
    }));
});

app.MapGet("/readyz", () => "ok");
app.Run();

// As the broker: HTTP/2 where TLS negotiates it (FlowBench --tls), HTTP/1.1 on plain http.
static HttpRequestMessage Request(HttpMethod method, string url) => new(method, url) { Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionOrLower };
