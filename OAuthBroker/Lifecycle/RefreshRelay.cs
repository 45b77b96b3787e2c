using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using OAuthBroker.Allowlist;
using OAuthBroker.GitHub;
using OAuthBroker.Storage;
using OAuthBroker.Tokens;
using OAuthBroker.Users;

namespace OAuthBroker.Lifecycle;

/// <summary>What the token endpoint answers: the HTTP status and the JSON body, as issued.</summary>
public sealed record RelayAnswer(int Status, string Body, string Outcome, string? Reason, string? GitHubLogin)
{
    /// <summary>Set on a 503: when to try again.</summary>
    public TimeSpan? RetryAfter { get; init; }

    public override string ToString() => $"RelayAnswer {{ Status = {Status}, Outcome = {Outcome} }}";
}

/// <summary>
/// The refresh relay. An instance holds GitHub's refresh token but not the client secret a refresh needs; the broker
/// adds it. GitHub's refresh tokens are single use, so any number of presentations of one token within
/// <see cref="CollapseWindow"/>, on any replica, cause one GitHub call and all get its answer: the first claims the
/// token in the database, the others wait for the answer stored there (sealed with the key ring: it holds tokens).
/// </summary>
public sealed class RefreshRelay(
    IRefreshTokenRepository rows, IAccessTokenRepository accessTokens, GitHubClient gitHub, GitHubIntegrations integrations, IUserStore users, BrokerTokenIssuer issuer,
    IDataProtectionProvider dataProtection, IOptions<GitHubOptions> gitHubOptions, TimeProvider time)
    : IPurgeable
{
    private readonly IDataProtector answers = dataProtection.CreateProtector("OAuthBroker.Lifecycle.RefreshAnswer.v1");

    public static readonly TimeSpan CollapseWindow = TimeSpan.FromMinutes(2);

    /// <summary>How long a refresh token is recorded when GitHub does not say (its refresh tokens last six months).</summary>
    public static readonly TimeSpan DefaultRefreshLifetime = TimeSpan.FromDays(184);

    private static readonly TimeSpan WaitStep = TimeSpan.FromMilliseconds(25);

    public const string Issued = "issued";

    public string Name => "refresh_tokens";

    /// <summary>How long the instance of a token that does not expire (an OAuth App's) is remembered, for its revocation.</summary>
    public static readonly TimeSpan UnexpiringTokenRecord = TimeSpan.FromDays(366);

    /// <summary>
    /// Records, by hash, the GitHub tokens handed to <paramref name="instance"/> in a JWT: the access token, so that it
    /// and no other instance may revoke it, and the refresh token, so that it and no other may use it. Instances
    /// without a client credential, which can do neither, get no record.
    /// </summary>
    public async Task RecordIssuedAsync(AllowlistInstance instance, BrokerUser user, GitHubToken token, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(token);
        // Only an instance with a client credential can refresh or revoke, so only its tokens are worth a row: logins
        // of the others cost no write here.
        if (!instance.DeliversAccessToken || !instance.HasClientCredential)
        {
            return;
        }

        var now = time.GetUtcNow();
        var accessExpiresAt = token.ExpiresAt ?? now.Add(UnexpiringTokenRecord);
        var refreshHash = instance.Refresh && token.RefreshToken is { } refreshToken ? Hash(refreshToken) : null;
        await accessTokens.RecordAsync(Hash(token.AccessToken), instance.Id, user.Id, now.ToUnixTimeMilliseconds(), accessExpiresAt.ToUnixTimeMilliseconds(), refreshHash, cancellationToken);
        if (refreshHash is not null)
        {
            var expiresAt = token.RefreshTokenExpiresAt ?? now.Add(DefaultRefreshLifetime);
            await rows.RecordAsync(refreshHash, instance.Id, user.Id, now.ToUnixTimeMilliseconds(), expiresAt.ToUnixTimeMilliseconds(), cancellationToken);
        }
    }

    /// <summary>RFC 7009 for an access token the instance holds: revoked at GitHub if it was issued to this instance.</summary>
    public async Task<RelayAnswer> RevokeAsync(AllowlistInstance instance, string accessToken, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        var hash = Hash(accessToken);
        if (await accessTokens.FindInstanceAsync(hash, cancellationToken) is not { } owner || !string.Equals(owner, instance.Id, StringComparison.Ordinal))
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_grant", "The token is not a GitHub token this broker handed to this instance.", outcome: "not_its_token");
        }

        if (integrations.For(instance) is not { } integration)
        {
            return MissingIntegration();
        }

        if (await gitHub.RevokeAsync(integration, accessToken, cancellationToken) is { } failure)
        {
            return failure.Kind == GitHubFailureKind.Unavailable
                ? Unavailable("GitHub is not reachable right now; try the revocation again shortly.") with { Reason = failure.Reason }
                : Error(StatusCodes.Status502BadGateway, "server_error", "GitHub did not revoke the token.", outcome: "github_error") with { Reason = failure.Reason };
        }

        // GitHub documents this call as revoking the one access token; the refresh token issued with it is not said to
        // die. RFC 7009 section 2.1 lets the server end it too, and the instance asked to end this sign-in: the broker
        // stops relaying it (GitHub may still hold it until it expires, unused).
        if (await accessTokens.FindRefreshHashAsync(hash, cancellationToken) is { } refreshHash)
        {
            await rows.RevokeWithAccessTokenAsync(refreshHash, time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
        }

        return new RelayAnswer(StatusCodes.Status200OK, "{}", "revoked", null, null);
    }

    /// <summary>
    /// Refreshes GitHub's <paramref name="refreshToken"/> for <paramref name="instance"/>. The answer is the broker
    /// JWT of a login, or what <paramref name="answerFor"/> makes of the user and the new token (an OpenID Connect
    /// client's token response).
    /// </summary>
    public async Task<RelayAnswer> RefreshAsync(AllowlistInstance instance, string refreshToken, Func<BrokerUser, GitHubToken, string>? answerFor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(instance);
        var hash = Hash(refreshToken);
        var row = await rows.FindAsync(hash, cancellationToken);
        if (row is null)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_grant", "The refresh token is not one the broker handed out, or it has expired or been used: sign the user in again.");
        }

        // Bound at issue time: a token leaked from one instance is worthless to another.
        if (!string.Equals(row.InstanceId, instance.Id, StringComparison.Ordinal))
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_grant", "The refresh token was issued to another instance.", outcome: "wrong_instance");
        }

        // The user revoked the app on GitHub (its webhook said so): GitHub would refuse the token, so it is not asked.
        if (row.RevokedAt is not null && row.RevokedBy == RefreshTokenRows.RevokedWithAccessToken)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_grant", "The refresh token was revoked with its access token (/oauth/revoke): sign the user in again.", outcome: "revoked_with_access_token");
        }

        if (row.RevokedAt is not null)
        {
            return Error(StatusCodes.Status400BadRequest, "invalid_grant", "The user revoked the broker's GitHub App on GitHub: sign the user in again.", outcome: "app_revoked");
        }

        // A claim older than GitHub's deadline and some slack belongs to a replica that died mid-call.
        var deadline = gitHubOptions.Value.Timeout + TimeSpan.FromSeconds(5);
        var waited = TimeSpan.Zero;
        while (true)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            if (row!.AnsweredAt is { } answeredAt)
            {
                return now - answeredAt <= (long)CollapseWindow.TotalMilliseconds && OpenAnswer(row.Answer) is { } answer
                    ? new RelayAnswer(row.Outcome == Issued ? StatusCodes.Status200OK : StatusCodes.Status400BadRequest, answer, row.Outcome == Issued ? "succeeded" : row.Outcome!, "a concurrent refresh's answer", null)
                    : Error(StatusCodes.Status400BadRequest, "invalid_grant", "The refresh token has already been used: use the one the refresh returned, or sign the user in again.");
            }

            if (await rows.TryClaimAsync(hash, now, now - (long)deadline.TotalMilliseconds, cancellationToken))
            {
                return await CallGitHubAsync(instance, row, hash, refreshToken, answerFor, cancellationToken);
            }

            // Another request (here or on another replica) is at GitHub with this token: wait for its answer.
            if (waited > deadline || (waited > TimeSpan.Zero && row.ClaimedAt is null))
            {
                // The claim was given back (GitHub unreachable) or never answered: the token is not known to be spent.
                return Unavailable("GitHub did not answer the refresh; try again shortly.");
            }

            await Task.Delay(WaitStep, time, cancellationToken);
            waited += WaitStep;
            row = await rows.FindAsync(hash, cancellationToken) ?? row with { ClaimedAt = null };
        }
    }

    private async Task<RelayAnswer> CallGitHubAsync(
        AllowlistInstance instance, RefreshTokenRow row, byte[] hash, string refreshToken, Func<BrokerUser, GitHubToken, string>? answerFor, CancellationToken cancellationToken)
    {
        if (integrations.For(instance) is not { } integration)
        {
            await rows.ReleaseAsync(hash, CancellationToken.None);
            return MissingIntegration();
        }

        var result = await gitHub.RefreshAsync(integration, refreshToken, cancellationToken);
        if (result.Failure is { } failure)
        {
            if (failure.Kind == GitHubFailureKind.Unavailable)
            {
                // Not spent as far as we know: the instance may try again with the same token.
                await rows.ReleaseAsync(hash, CancellationToken.None);
                return Unavailable("GitHub is not reachable right now; try the refresh again shortly.") with { Reason = failure.Reason };
            }

            // bad_refresh_token, unauthorized_client and the like are final, and so is an answer we cannot read (the
            // token may be spent): every waiting request gets the same error.
            var (status, code) = failure.Kind == GitHubFailureKind.Rejected
                ? (StatusCodes.Status400BadRequest, "invalid_grant")
                : (StatusCodes.Status502BadGateway, "server_error");
            var error = Error(status, code, failure.Kind == GitHubFailureKind.Rejected
                ? "GitHub refused the refresh token (expired, revoked or already used): sign the user in again."
                : "GitHub's answer to the refresh could not be read; sign the user in again.", outcome: code) with { Reason = failure.Reason };
            await StoreAnswerAsync(hash, code, error.Body);
            return error;
        }

        var token = result.Value!;
        var user = await users.FindAsync(row.UserId, cancellationToken);
        if (user is null)
        {
            var gone = Error(StatusCodes.Status400BadRequest, "invalid_grant", "The user of this refresh token is no longer known to the broker: sign the user in again.");
            await StoreAnswerAsync(hash, "invalid_grant", gone.Body);
            return gone;
        }

        // An admin ended this user's access: the fresh token is spent on revoking the user's whole grant at GitHub,
        // and the instance gets no token.
        // Read again after GitHub's answer: an admin may have asked while the refresh was under way.
        if ((row.RevokeGrantAt ?? (await rows.FindAsync(hash, CancellationToken.None))?.RevokeGrantAt) is not null)
        {
            return await EndGrantAsync(integration, token, user, hash, cancellationToken);
        }

        // The answer travels in a response body, not a URL: the JWT gets the full lifetime, as with form_post.
        var body = answerFor?.Invoke(user, token)
            ?? JsonSerializer.Serialize(new RefreshResponse(issuer.Issue(instance, user, token, Login.InstanceResponse.FormPost), user.Login), LifecycleJsonContext.Default.RefreshResponse);
        // The new refresh token is recorded before the answer is published, so it can be used as soon as anyone sees it.
        await RecordIssuedAsync(instance, user, token, CancellationToken.None);
        await StoreAnswerAsync(hash, Issued, body);
        return new RelayAnswer(StatusCodes.Status200OK, body, "succeeded", null, user.Login);
    }

    private async Task<RelayAnswer> EndGrantAsync(GitHubIntegrationOptions integration, GitHubToken token, BrokerUser user, byte[] hash, CancellationToken cancellationToken)
    {
        var failure = await gitHub.RevokeGrantAsync(integration, token.AccessToken, CancellationToken.None);
        if (failure is null)
        {
            await users.ForgetInstancesAsync(user.Id, integration.Provider, CancellationToken.None);
        }
        else
        {
            // The grant stays; the one token the refresh made is ended at least (it lives 8 hours otherwise).
            await gitHub.RevokeAsync(integration, token.AccessToken, CancellationToken.None);
        }

        var ended = Error(StatusCodes.Status400BadRequest, "invalid_grant", "The broker's administrator ended this user's access: sign the user in again.", outcome: "grant_revoked")
            with { Reason = failure is null ? "the user's grant was revoked at GitHub, as an admin asked" : "an admin ended the user's access; GitHub did not revoke the grant: " + failure.Reason, GitHubLogin = user.Login };
        await StoreAnswerAsync(hash, "invalid_grant", ended.Body);
        return ended;
    }

    // Stored whatever the caller's cancellation: GitHub has spent the token, and the waiting requests need the answer.
    private Task StoreAnswerAsync(byte[] hash, string outcome, string body) =>
        rows.AnswerAsync(hash, time.GetUtcNow().ToUnixTimeMilliseconds(), outcome, answers.Protect(body), CancellationToken.None);

    // An answer that cannot be opened (a key ring the broker no longer has) is treated as spent.
    private string? OpenAnswer(string? answer)
    {
        try
        {
            return answer is null ? null : answers.Unprotect(answer);
        }
        catch (Exception exception) when (exception is System.Security.Cryptography.CryptographicException or FormatException)
        {
            return null;
        }
    }

    public async Task<int> PurgeAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return await rows.DeleteEndedAsync(now.ToUnixTimeMilliseconds(), now.Subtract(CollapseWindow).ToUnixTimeMilliseconds(), cancellationToken)
            + await accessTokens.DeleteExpiredAsync(now.ToUnixTimeMilliseconds(), cancellationToken);
    }

    public static byte[] Hash(string refreshToken) => SHA256.HashData(Encoding.UTF8.GetBytes(refreshToken));

    public static RelayAnswer Error(int status, string code, string description, string? outcome = null) =>
        new(status, JsonSerializer.Serialize(new OAuthError(code, description), LifecycleJsonContext.Default.OAuthError), outcome ?? code, description, null);

    // A configuration fault, not the instance's: its token is not spent, and works again once the section is back.
    private static RelayAnswer MissingIntegration() =>
        Unavailable("The broker has no GitHub App configured for this instance's entry; tell the broker's administrator.") with { Reason = "no GitHubApp section" };

    private static RelayAnswer Unavailable(string description) =>
        Error(StatusCodes.Status503ServiceUnavailable, "temporarily_unavailable", description, outcome: "github_error") with { RetryAfter = TimeSpan.FromSeconds(30) };
}
