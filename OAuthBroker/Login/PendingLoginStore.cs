using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.AspNetCore.DataProtection;
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
/// Server-side, one-time login state. The state sent to GitHub carries the login's expiry time and 256 random bits;
/// it and the browser-binding cookie (another 256 random bits) are stored only as SHA-256 hashes, and the PKCE verifier
/// encrypted with Data Protection. The expiry finds the row: new rows and lookups stay at the end of the table's index
/// however many recent logins it holds, and the hash is then compared in constant time.
/// </summary>
public sealed class PendingLoginStore(SqliteConnectionFactory connections, IDataProtectionProvider dataProtection, TimeProvider time) : IPurgeable
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    /// <summary>Consumed and expired rows are kept this long so a replay is told "already used", then deleted.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    private const int SecretBytes = 32;

    /// <summary>Length of a state: 8 bytes of expiry (big-endian Unix milliseconds) and 32 random bytes, base64url-encoded.</summary>
    private const int StateLength = 54;
    private const int StateBytes = 8 + SecretBytes;
    private readonly IDataProtector protector = dataProtection.CreateProtector("OAuthBroker.Login.PkceVerifier.v1");

    public async Task<StartedLogin> CreateAsync(string instanceId, string redirectUri, string? instanceState, string scope, string responseMode, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var expiresAt = now.Add(Lifetime).ToUnixTimeMilliseconds();
        var state = NewState(expiresAt);
        var browserSecret = NewSecret();
        // RFC 7636 section 4.1: 32 random octets, base64url-encoded, give a 43-character verifier.
        var verifier = NewSecret();
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
                ExpiresAt = expiresAt,
                ResponseMode = responseMode,
            });
        var challenge = Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        return new StartedLogin(state, browserSecret, challenge);
    }

    /// <summary>
    /// Takes the login for <paramref name="state"/> if it belongs to this browser, is unexpired and unused. The
    /// conditional UPDATE makes this atomic: of any number of concurrent replays exactly one succeeds.
    /// </summary>
    /// <remarks>For an expired login, <c>ExpiredRedirectUri</c> says where it was going, so the user can be offered a way back.</remarks>
    public async Task<(PendingLogin? Login, LoginRefusal? Refusal, string? ExpiredRedirectUri)> TryConsumeAsync(string? state, string? browserSecret, CancellationToken cancellationToken)
    {
        if (!TryReadExpiry(state, out var expiresAt))
        {
            return (null, LoginRefusal.UnknownState, null);
        }

        var stateHash = Hash(state!);
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        // Logins started in the same millisecond share an expiry: a handful of rows at most.
        var candidates = await connection.QueryAsync<Row>(
            """
            SELECT id AS Id, state_hash AS StateHash, browser_hash AS BrowserHash, instance_id AS InstanceId, redirect_uri AS RedirectUri,
                   instance_state AS InstanceState, scope AS Scope, protected_verifier AS ProtectedVerifier, expires_at AS ExpiresAt,
                   consumed_at AS ConsumedAt, response_mode AS ResponseMode
            FROM pending_logins WHERE expires_at = @expiresAt
            """,
            new { expiresAt });
        Row? row = null;
        foreach (var candidate in candidates)
        {
            if (CryptographicOperations.FixedTimeEquals(candidate.StateHash, stateHash))
            {
                row = candidate;
            }
        }

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
            "UPDATE pending_logins SET consumed_at = @now WHERE id = @Id AND consumed_at IS NULL AND expires_at > @now",
            new { row.Id, now });
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
        // A login is consumed before it expires, so every row to delete expires before cutoff + Lifetime: the expiry
        // index finds them all, without reading the table.
        var horizon = cutoff + (long)Lifetime.TotalMilliseconds;
        return await connections.DeleteInBatchesAsync(
            "pending_logins", "expires_at < @horizon AND (expires_at < @cutoff OR consumed_at < @cutoff)", new { cutoff, horizon }, cancellationToken);
    }

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.ASCII.GetBytes(secret));

    private static string NewSecret() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(SecretBytes));

    private static string NewState(long expiresAt)
    {
        Span<byte> bytes = stackalloc byte[StateBytes];
        BinaryPrimitives.WriteInt64BigEndian(bytes, expiresAt);
        RandomNumberGenerator.Fill(bytes[8..]);
        return Base64Url.EncodeToString(bytes);
    }

    private static bool TryReadExpiry(string? state, out long expiresAt)
    {
        expiresAt = 0;
        Span<byte> bytes = stackalloc byte[StateBytes];
        if (state is not { Length: StateLength } || !state.All(IsBase64UrlCharacter)
            || !Base64Url.TryDecodeFromChars(state, bytes, out var written) || written != StateBytes)
        {
            return false;
        }

        expiresAt = BinaryPrimitives.ReadInt64BigEndian(bytes);
        return expiresAt > 0;
    }

    private static bool IsWellFormedSecret(string? value) => value is { Length: 43 } && value.All(IsBase64UrlCharacter);

    private static bool IsBase64UrlCharacter(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';

    private sealed record Row(long Id, byte[] StateHash, byte[] BrowserHash, string InstanceId, string RedirectUri, string? InstanceState, string Scope, byte[] ProtectedVerifier, long ExpiresAt, long? ConsumedAt, string ResponseMode);
}
