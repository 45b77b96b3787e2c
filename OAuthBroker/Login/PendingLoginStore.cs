using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Storage;

namespace OAuthBroker.Login;

/// <summary>A login between <c>/auth/github</c> and GitHub's return to the callback.</summary>
public sealed record PendingLogin(string InstanceId, string RedirectUri, string? InstanceState, string Scope, string CodeVerifier, string ResponseMode)
{
    public override string ToString() => $"PendingLogin {{ InstanceId = {InstanceId}, RedirectUri = {RedirectUri} }}";
}

/// <summary>What the browser and GitHub are given when a login starts. All three values are secrets.</summary>
public sealed record StartedLogin(string State, string BrowserSecret, string CodeChallenge)
{
    public override string ToString() => "StartedLogin { (secret values) }";
}

public enum LoginRefusal
{
    UnknownState,
    OtherBrowser,
    AlreadyUsed,
    Expired,
}

/// <summary>
/// Server-side, one-time login state. The state sent to GitHub and the browser-binding cookie are random 256-bit
/// values stored only as SHA-256 hashes; the PKCE verifier is stored encrypted with Data Protection.
/// </summary>
public sealed class PendingLoginStore(SqliteConnectionFactory connections, IDataProtectionProvider dataProtection, TimeProvider time) : IPurgeable
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    /// <summary>Consumed and expired rows are kept this long so a replay is told "already used", then deleted.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    private const int SecretBytes = 32;
    private readonly IDataProtector protector = dataProtection.CreateProtector("OAuthBroker.Login.PkceVerifier.v1");

    public async Task<StartedLogin> CreateAsync(string instanceId, string redirectUri, string? instanceState, string scope, string responseMode, CancellationToken cancellationToken)
    {
        var state = NewSecret();
        var browserSecret = NewSecret();
        // RFC 7636 section 4.1: 32 random octets, base64url-encoded, give a 43-character verifier.
        var verifier = NewSecret();
        var now = time.GetUtcNow();
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        await connection.ExecuteAsync(
            """
            INSERT INTO pending_logins (state_hash, browser_hash, instance_id, redirect_uri, instance_state, scope, protected_verifier, created_at, expires_at, response_mode)
            VALUES (@StateHash, @BrowserHash, @InstanceId, @RedirectUri, @InstanceState, @Scope, @ProtectedVerifier, @CreatedAt, @ExpiresAt, @ResponseMode)
            """,
            new
            {
                StateHash = Hash(state),
                BrowserHash = Hash(browserSecret),
                InstanceId = instanceId,
                RedirectUri = redirectUri,
                InstanceState = instanceState,
                Scope = scope,
                ProtectedVerifier = protector.Protect(Encoding.ASCII.GetBytes(verifier)),
                CreatedAt = now.ToUnixTimeMilliseconds(),
                ExpiresAt = now.Add(Lifetime).ToUnixTimeMilliseconds(),
                ResponseMode = responseMode,
            });
        var challenge = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        return new StartedLogin(state, browserSecret, challenge);
    }

    /// <summary>
    /// Takes the login for <paramref name="state"/> if it belongs to this browser, is unexpired and unused. The
    /// conditional UPDATE makes this atomic: of any number of concurrent replays exactly one succeeds.
    /// </summary>
    /// <remarks>For an expired login, <c>ExpiredRedirectUri</c> says where it was going, so the user can be offered a way back.</remarks>
    public async Task<(PendingLogin? Login, LoginRefusal? Refusal, string? ExpiredRedirectUri)> TryConsumeAsync(string? state, string? browserSecret, CancellationToken cancellationToken)
    {
        if (!IsWellFormedSecret(state))
        {
            return (null, LoginRefusal.UnknownState, null);
        }

        var stateHash = Hash(state!);
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        var row = await connection.QuerySingleOrDefaultAsync<Row>(
            """
            SELECT browser_hash AS BrowserHash, instance_id AS InstanceId, redirect_uri AS RedirectUri, instance_state AS InstanceState,
                   scope AS Scope, protected_verifier AS ProtectedVerifier, expires_at AS ExpiresAt, consumed_at AS ConsumedAt, response_mode AS ResponseMode
            FROM pending_logins WHERE state_hash = @stateHash
            """,
            new { stateHash });
        if (row is null)
        {
            return (null, LoginRefusal.UnknownState, null);
        }

        if (!IsWellFormedSecret(browserSecret) || !CryptographicOperations.FixedTimeEquals(Hash(browserSecret!), row.BrowserHash))
        {
            return (null, LoginRefusal.OtherBrowser, null);
        }

        if (row.ConsumedAt is not null)
        {
            return (null, LoginRefusal.AlreadyUsed, null);
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (row.ExpiresAt <= now)
        {
            return (null, LoginRefusal.Expired, row.RedirectUri);
        }

        var taken = await connection.ExecuteAsync(
            "UPDATE pending_logins SET consumed_at = @now WHERE state_hash = @stateHash AND consumed_at IS NULL AND expires_at > @now",
            new { stateHash, now });
        if (taken != 1)
        {
            return (null, LoginRefusal.AlreadyUsed, null);
        }

        var verifier = Encoding.ASCII.GetString(protector.Unprotect(row.ProtectedVerifier));
        return (new PendingLogin(row.InstanceId, row.RedirectUri, row.InstanceState, row.Scope, verifier, row.ResponseMode), null, null);
    }

    public string Name => "pending_logins";

    /// <summary>Deletes logins that ended or expired more than <see cref="Retention"/> ago; returns how many.</summary>
    public async Task<int> PurgeAsync(CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow().Subtract(Retention).ToUnixTimeMilliseconds();
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        return await connection.ExecuteAsync("DELETE FROM pending_logins WHERE expires_at < @cutoff OR consumed_at < @cutoff", new { cutoff });
    }

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.ASCII.GetBytes(secret));

    private static string NewSecret() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(SecretBytes));

    private static bool IsWellFormedSecret(string? value) =>
        value is { Length: 43 } && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private sealed record Row(byte[] BrowserHash, string InstanceId, string RedirectUri, string? InstanceState, string Scope, byte[] ProtectedVerifier, long ExpiresAt, long? ConsumedAt, string ResponseMode);
}
