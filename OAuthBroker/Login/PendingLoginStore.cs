using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using OAuthBroker.Storage;
using OAuthBroker.Telemetry;

namespace OAuthBroker.Login;

/// <summary>A login between <c>/auth/github</c> and GitHub's return to the callback.</summary>
public sealed record PendingLogin(string InstanceId, string RedirectUri, string? InstanceState, string Scope, string CodeVerifier, string ResponseMode)
{
    /// <summary>An OpenID Connect client's request (JSON), the install relay's mark (<see cref="InstallRelay"/>); null for the broker's own redirect.</summary>
    public string? Request { get; init; }

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
/// it and the browser-binding cookie (another 256 random bits) are stored only as SHA-256 hashes. The expiry finds
/// the row: new rows and lookups stay at the end of the table's index however many recent logins it holds, and the
/// hash is then compared in constant time. The PKCE verifier is not stored at all: it is derived from the browser's
/// secret, which only that browser holds (the database keeps a hash of it under another label).
/// </summary>
public sealed class PendingLoginStore(IPendingLoginRepository rows, TimeProvider time, BrokerMetrics metrics) : IPurgeable
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    /// <summary>Consumed and expired rows are kept this long so a replay is told "already used", then deleted.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    private const int SecretBytes = 32;

    /// <summary>Length of a state: 8 bytes of expiry (big-endian Unix milliseconds) and 32 random bytes, base64url-encoded.</summary>
    private const int StateLength = 54;
    private const int StateBytes = 8 + SecretBytes;
    private static readonly byte[] VerifierLabel = "OAuthBroker PKCE code_verifier v1:"u8.ToArray();

    public async Task<StartedLogin> CreateAsync(string instanceId, string redirectUri, string? instanceState, string scope, string responseMode, string? request, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var expiresAt = now.Add(Lifetime).ToUnixTimeMilliseconds();
        Span<byte> random = stackalloc byte[2 * SecretBytes];
        RandomNumberGenerator.Fill(random);
        var state = NewState(expiresAt, random[..SecretBytes]);
        var browserSecret = Base64Url.EncodeToString(random[SecretBytes..]);
        random.Clear();
        using (metrics.TimeDatabase("pending_login_insert"))
        {
            await rows.InsertAsync(
                new PendingLoginRow(0, Hash(state), Hash(browserSecret), instanceId, redirectUri, instanceState, scope, responseMode, now.ToUnixTimeMilliseconds(), expiresAt, null) { Request = request },
                cancellationToken);
        }

        var challenge = S256Challenge(CodeVerifier(browserSecret));
        return new StartedLogin(state, browserSecret, challenge);
    }

    /// <summary>
    /// Takes the login for <paramref name="state"/> if it belongs to this browser, is unexpired and unused. The
    /// repository's conditional update makes this atomic: of any number of concurrent replays exactly one succeeds.
    /// </summary>
    /// <remarks>For an expired login, <c>ExpiredRedirectUri</c> says where it was going, so the user can be offered a way back.</remarks>
    public async Task<(PendingLogin? Login, LoginRefusal? Refusal, string? ExpiredRedirectUri)> TryConsumeAsync(string? state, string? browserSecret, CancellationToken cancellationToken)
    {
        if (!TryReadExpiry(state, out var expiresAt))
        {
            return (null, LoginRefusal.UnknownState, null);
        }

        // A secret that is not one of ours cannot match; the look-up still runs, to tell "another browser" from "unknown".
        var wellFormed = IsEncoded256Bits(browserSecret);
        var browserHash = wellFormed ? Hash(browserSecret!) : new byte[SHA256.HashSizeInBytes];
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        ConsumeAttempt attempt;
        using (metrics.TimeDatabase("pending_login_consume"))
        {
            attempt = await rows.ConsumeAsync(expiresAt, Hash(state!), browserHash, now, cancellationToken);
        }

        // The repository found the row and decided the consume; these checks only name the refusal.
        if (attempt.Row is not { } row)
        {
            return (null, LoginRefusal.UnknownState, null);
        }

        if (!wellFormed || !CryptographicOperations.FixedTimeEquals(browserHash, row.BrowserHash))
        {
            return (null, LoginRefusal.OtherBrowser, null);
        }

        if (row.ConsumedAt is not null)
        {
            return (null, LoginRefusal.AlreadyUsed, null);
        }

        if (row.ExpiresAt <= now)
        {
            return (null, LoginRefusal.Expired, row.RedirectUri);
        }

        if (!attempt.Consumed)
        {
            return (null, LoginRefusal.AlreadyUsed, null);
        }

        return (new PendingLogin(row.InstanceId, row.RedirectUri, row.InstanceState, row.Scope, CodeVerifier(browserSecret!), row.ResponseMode) { Request = row.Request }, null, null);
    }

    public string Name => "pending_logins";

    /// <summary>Deletes logins that ended or expired more than <see cref="Retention"/> ago; returns how many.</summary>
    public Task<int> PurgeAsync(CancellationToken cancellationToken)
    {
        var cutoff = time.GetUtcNow().Subtract(Retention).ToUnixTimeMilliseconds();
        // A login is consumed before it expires, so every row to delete expires before cutoff + Lifetime: the expiry
        // index finds them all, without reading the table.
        return rows.DeleteEndedAsync(cutoff, cutoff + (long)Lifetime.TotalMilliseconds, cancellationToken);
    }

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.ASCII.GetBytes(secret));

    /// <summary>
    /// RFC 7636 section 4.1: a 43-character verifier from 256 bits. Derived from the browser secret (a hash under its
    /// own label, so the stored hash of the secret does not give it away), it needs no storage and no encryption: who
    /// can compute it already holds this browser's binding cookie for this one login.
    /// </summary>
    private static string CodeVerifier(string browserSecret)
    {
        Span<byte> input = stackalloc byte[VerifierLabel.Length + browserSecret.Length];
        VerifierLabel.CopyTo(input);
        Encoding.ASCII.GetBytes(browserSecret, input[VerifierLabel.Length..]);
        return Base64Url.EncodeToString(SHA256.HashData(input));
    }

    private static string NewState(long expiresAt, ReadOnlySpan<byte> random)
    {
        Span<byte> bytes = stackalloc byte[StateBytes];
        BinaryPrimitives.WriteInt64BigEndian(bytes, expiresAt);
        random.CopyTo(bytes[8..]);
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

    /// <summary>PKCE's S256 challenge of <paramref name="verifier"/> (RFC 7636 section 4.2).</summary>
    public static string S256Challenge(string verifier) => Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));

    /// <summary>
    /// The shape of 256 bits in unpadded base64url (43 characters): a browser secret, and an S256 challenge.
    /// </summary>
    public static bool IsEncoded256Bits(string? value) => value is { Length: 43 } && value.All(IsBase64UrlCharacter);

    private static bool IsBase64UrlCharacter(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';
}
