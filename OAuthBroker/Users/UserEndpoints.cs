using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;

namespace OAuthBroker.Users;

public static partial class UserEndpoints
{
    public static IServiceCollection AddUsers(this IServiceCollection services) =>
        services.AddStore<IUserStore, SqliteUserStore, PostgresUserStore>()
            .AddSingleton<IPurgeable, UserInstancePurge>();

    public static IEndpointRouteBuilder MapUsers(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/v1/user/me", GetCurrentUser).WithTags("Users");
        return endpoints;
    }

    /// <summary>The profile of the user a broker JWT was issued for.</summary>
    public static async Task<Results<Ok<UserProfile>, ProblemHttpResult>> GetCurrentUser(
        HttpContext context, BrokerTokenValidator validator, IUserStore users, ILogger<IUserStore> logger, CancellationToken cancellationToken)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length > BrokerTokenValidator.MaxTokenBytes + 7)
        {
            return Unauthorized(context, "Send the broker JWT as 'Authorization: Bearer <token>'.", withError: header.Length > 0);
        }

        var result = await validator.ValidateAsync(header[7..].Trim());
        if (!result.IsValid)
        {
            // The exception type says why (expired, bad signature, audience) without the token itself.
            var reason = result.Exception?.GetType().Name ?? "unknown";
            Log.TokenRefused(logger, reason);
            return Unauthorized(context, result.Exception is InstanceDisabledException
                ? "The token was issued to an application that the broker's administrator has disabled."
                : "The token is not a valid, unexpired token issued by this broker for a known instance.", withError: true);
        }

        var subject = BrokerTokenValidator.Claim(result.ClaimsIdentity, "sub");
        var user = long.TryParse(subject, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? await users.FindAsync(id, cancellationToken) : null;
        if (user is null)
        {
            return Unauthorized(context, "The token's user is not known to this broker.", withError: true);
        }

        return TypedResults.Ok(new UserProfile(
            user.Id, user.GitHubId, user.Login, user.Name, user.Email, user.AvatarUrl,
            DateTimeOffset.FromUnixTimeMilliseconds(user.FirstLoginAt), DateTimeOffset.FromUnixTimeMilliseconds(user.LastLoginAt)));
    }

    // RFC 6750 section 3: a request without credentials gets the challenge only; a bad token gets invalid_token.
    private static ProblemHttpResult Unauthorized(HttpContext context, string detail, bool withError)
    {
        context.Response.Headers.WWWAuthenticate = withError
            ? $"Bearer realm=\"oauthbroker\", error=\"invalid_token\", error_description=\"{detail}\""
            : "Bearer realm=\"oauthbroker\"";
        return TypedResults.Problem(detail, statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized");
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Refused a bearer token at /api/v1/user/me: {Reason}")]
        public static partial void TokenRefused(ILogger logger, string reason);
    }
}

public sealed record UserProfile(
    [property: System.Text.Json.Serialization.JsonPropertyName("user_id")] long UserId,
    [property: System.Text.Json.Serialization.JsonPropertyName("github_id")] long GitHubId,
    [property: System.Text.Json.Serialization.JsonPropertyName("username")] string Username,
    [property: System.Text.Json.Serialization.JsonPropertyName("name")] string? Name,
    [property: System.Text.Json.Serialization.JsonPropertyName("email")] string? Email,
    [property: System.Text.Json.Serialization.JsonPropertyName("avatar_url")] string? AvatarUrl,
    [property: System.Text.Json.Serialization.JsonPropertyName("first_login_at")] DateTimeOffset FirstLoginAt,
    [property: System.Text.Json.Serialization.JsonPropertyName("last_login_at")] DateTimeOffset LastLoginAt);
