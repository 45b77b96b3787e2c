using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;
using OAuthBroker.Web;

namespace OAuthBroker.Admin;

/// <summary>
/// Two ways in: a session cookie (HttpOnly, Secure over https, SameSite=Strict) after a GitHub sign-in by a login in
/// Admin:GitHubLogins, or Authorization: Bearer with Admin:ApiToken for automation. Cookie-authenticated writes must
/// carry an antiforgery token; bearer requests carry no ambient credential and need none.
/// </summary>
public static class AdminAuthentication
{
    public const string SessionScheme = "AdminSession";
    public const string TokenScheme = "AdminToken";
    public const string Policy = "Admin";
    public const string CsrfHeader = "X-CSRF-Token";
    public const string SessionIdClaim = "oab_sid";

    public static IServiceCollection AddAdminAuthentication(this IServiceCollection services)
    {
        services.AddAuthentication(SessionScheme)
            .AddCookie(SessionScheme, _ => { })
            .AddScheme<AuthenticationSchemeOptions, AdminTokenHandler>(TokenScheme, _ => { });
        services.AddOptions<CookieAuthenticationOptions>(SessionScheme).Configure<IOptions<BrokerOptions>, IOptions<AdminOptions>>((cookie, broker, admin) =>
        {
            var secure = broker.Value.IsServedOverHttps;
            cookie.Cookie.Name = broker.Value.CookieName("oab-admin", secure);
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Strict;
            cookie.Cookie.SecurePolicy = secure ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
            cookie.Cookie.Path = broker.Value.CookiePath;
            cookie.ExpireTimeSpan = admin.Value.SessionLifetime;
            cookie.SlidingExpiration = false;
            cookie.Events.OnValidatePrincipal = ValidateSessionAsync;
            cookie.Events.OnRedirectToLogin = context => Challenge(context, StatusCodes.Status401Unauthorized);
            cookie.Events.OnRedirectToAccessDenied = context => Challenge(context, StatusCodes.Status403Forbidden);
        });
        services.AddAuthorizationBuilder().AddPolicy(Policy, policy => policy.AddAuthenticationSchemes(SessionScheme, TokenScheme).RequireAuthenticatedUser());
        services.AddAntiforgery(_ => { });
        services.AddOptions<AntiforgeryOptions>().Configure<IOptions<BrokerOptions>>((options, broker) =>
        {
            var secure = broker.Value.IsServedOverHttps;
            options.HeaderName = CsrfHeader;
            options.Cookie.Name = broker.Value.CookieName("oab-admin-csrf", secure);
            options.Cookie.SameSite = SameSiteMode.Strict;
            options.Cookie.HttpOnly = true;
            options.Cookie.Path = broker.Value.CookiePath;
            options.Cookie.SecurePolicy = secure ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
        });
        return services;
    }

    public static ClaimsPrincipal SessionPrincipal(AdminIdentity admin, string sessionId) =>
        new(new ClaimsIdentity(
            [
                new Claim(ClaimTypes.Name, admin.Login),
                new Claim(ClaimTypes.NameIdentifier, admin.GitHubId.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new Claim(SessionIdClaim, sessionId),
            ],
            SessionScheme));

    /// <summary>
    /// Every request: the session must still exist server-side (not signed out, not expired) and its admin must still be
    /// named by the current settings; otherwise the cookie is dropped at once.
    /// </summary>
    private static async Task ValidateSessionAsync(CookieValidatePrincipalContext context)
    {
        var services = context.HttpContext.RequestServices;
        var sessions = services.GetRequiredService<AdminSessionStore>();
        var sessionId = context.Principal?.FindFirst(SessionIdClaim)?.Value;
        var admin = await sessions.FindActiveAsync(sessionId, context.HttpContext.RequestAborted);
        if (admin is not null && services.GetRequiredService<IOptions<AdminOptions>>().Value.Names(admin, out _))
        {
            return;
        }

        await sessions.RevokeAsync(sessionId, context.HttpContext.RequestAborted);
        context.RejectPrincipal();
        await context.HttpContext.SignOutAsync(SessionScheme);
    }

    /// <summary>Pages send the browser to the sign-in page; the API and /metrics answer 401/403.</summary>
    private static Task Challenge(RedirectContext<CookieAuthenticationOptions> context, int status)
    {
        if (context.Request.Path.StartsWithSegments("/admin/api", StringComparison.Ordinal) || context.Request.Path.StartsWithSegments("/metrics", StringComparison.Ordinal)
            || status == StatusCodes.Status403Forbidden)
        {
            context.Response.StatusCode = status;
            return Task.CompletedTask;
        }

        context.Response.Redirect(context.HttpContext.BrowserPath("/admin/login"));
        return Task.CompletedTask;
    }

    /// <summary>Refuses a cookie-authenticated write without a valid antiforgery token (login CSRF and cross-site forms).</summary>
    public static async ValueTask<object?> RequireCsrfTokenForSessionWrites(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method)
            && context.User.Identity?.AuthenticationType == SessionScheme)
        {
            try
            {
                await context.RequestServices.GetRequiredService<IAntiforgery>().ValidateRequestAsync(context);
            }
            catch (AntiforgeryValidationException)
            {
                return TypedResults.Problem("This change needs the form's CSRF token (or the X-CSRF-Token header); reload the page and try again.", statusCode: StatusCodes.Status400BadRequest, title: "CSRF check failed");
            }
        }

        return await next(invocation);
    }
}

/// <summary>Authorization: Bearer &lt;Admin:ApiToken&gt;, compared as SHA-256 digests in constant time.</summary>
public sealed class AdminTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IOptions<AdminOptions> admin)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || admin.Value.ApiTokenHash is not { } expected)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[7..].Trim()));
        if (!CryptographicOperations.FixedTimeEquals(presented, expected))
        {
            return Task.FromResult(AuthenticateResult.Fail("The admin API token is not valid."));
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "api-token")], AdminAuthentication.TokenScheme);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        // Pages are the session cookie's to challenge (it sends the browser to the sign-in page).
        if (!Request.Path.StartsWithSegments("/admin/api", StringComparison.Ordinal))
        {
            return Task.CompletedTask;
        }

        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer realm=\"oauthbroker-admin\"";
        return Task.CompletedTask;
    }
}
