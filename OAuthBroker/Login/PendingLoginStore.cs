using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;
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
/// One-time login state that costs no database row until the login comes back. The state sent to GitHub is the
/// pending login itself (instance, redirect URI, the instance's state, scope, response mode, expiry, a random login id
/// and the SHA-256 of the browser-binding cookie), sealed with Data Protection under the key ring every replica shares:
/// authenticated encryption, so it can be neither read nor forged nor edited. One-time use is the single insert of the
/// login's id at the callback, which succeeds once however many replays race for it on however many replicas. The
/// PKCE verifier is derived from the browser's secret, which only that browser holds.
/// </summary>
public sealed class PendingLoginStore(IUsedLoginRepository usedLogins, IDataProtectionProvider dataProtection, TimeProvider time, BrokerMetrics metrics) : IPurgeable
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    /// <summary>A used login's id is kept this long past its expiry so that a replay is told "already used", then deleted.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    /// <summary>
    /// The longest state the callback reads: a sealed login with every field at its bound (redirect URI 2,048, the
    /// instance's state 512, scopes and an OpenID Connect request) stays below it.
    /// </summary>
    public const int MaxStateLength = 12 * 1024;

    private const int SecretBytes = 32;
    private const int LoginIdBytes = 16;
    private const byte PayloadVersion = 1;
    private static readonly byte[] VerifierLabel = "OAuthBroker PKCE code_verifier v1:"u8.ToArray();

    private readonly IDataProtector sealer = dataProtection.CreateProtector("OAuthBroker.Login.PendingLogin.v1");

    public StartedLogin Create(string instanceId, string redirectUri, string? instanceState, string scope, string responseMode, string? request)
    {
        var expiresAt = time.GetUtcNow().Add(Lifetime).ToUnixTimeMilliseconds();
        Span<byte> random = stackalloc byte[SecretBytes + LoginIdBytes];
        RandomNumberGenerator.Fill(random);
        var browserSecret = Base64Url.EncodeToString(random[..SecretBytes]);
        var sealedLogin = new SealedLogin(expiresAt, random[SecretBytes..].ToArray(), Hash(browserSecret), instanceId, redirectUri, instanceState, scope, responseMode, request);
        random.Clear();
        var state = Base64Url.EncodeToString(sealer.Protect(sealedLogin.Write()));
        return new StartedLogin(state, browserSecret, S256Challenge(CodeVerifier(browserSecret)));
    }

    /// <summary>
    /// Takes the login <paramref name="state"/> carries if it belongs to this browser, is unexpired and unused. The
    /// repository's insert makes this atomic: of any number of concurrent replays exactly one succeeds.
    /// </summary>
    /// <remarks>For an expired login, <c>ExpiredRedirectUri</c> says where it was going, so the user can be offered a way back.</remarks>
    public async Task<(PendingLogin? Login, LoginRefusal? Refusal, string? ExpiredRedirectUri)> TryConsumeAsync(string? state, string? browserSecret, CancellationToken cancellationToken)
    {
        if (Unseal(state) is not { } login)
        {
            return (null, LoginRefusal.UnknownState, null);
        }

        if (!IsEncoded256Bits(browserSecret) || !CryptographicOperations.FixedTimeEquals(Hash(browserSecret!), login.BrowserHash))
        {
            return (null, LoginRefusal.OtherBrowser, null);
        }

        bool firstUse;
        using (metrics.TimeDatabase("pending_login_consume"))
        {
            firstUse = await usedLogins.TryMarkUsedAsync(login.ExpiresAt, login.LoginId, cancellationToken);
        }

        if (!firstUse)
        {
            return (null, LoginRefusal.AlreadyUsed, null);
        }

        if (login.ExpiresAt <= time.GetUtcNow().ToUnixTimeMilliseconds())
        {
            return (null, LoginRefusal.Expired, login.RedirectUri);
        }

        return (new PendingLogin(login.InstanceId, login.RedirectUri, login.InstanceState, login.Scope, CodeVerifier(browserSecret!), login.ResponseMode) { Request = login.Request }, null, null);
    }

    public string Name => "used_logins";

    /// <summary>Deletes the ids of logins that expired more than <see cref="Retention"/> ago; returns how many.</summary>
    public Task<int> PurgeAsync(CancellationToken cancellationToken) =>
        usedLogins.DeleteExpiredAsync(time.GetUtcNow().Subtract(Retention).ToUnixTimeMilliseconds(), cancellationToken);

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.ASCII.GetBytes(secret));

    private SealedLogin? Unseal(string? state)
    {
        if (state is not { Length: > 0 and <= MaxStateLength } || !state.All(IsBase64UrlCharacter))
        {
            return null;
        }

        try
        {
            return SealedLogin.Read(sealer.Unprotect(Base64Url.DecodeFromChars(state)));
        }
        catch (Exception exception) when (exception is CryptographicException or FormatException or EndOfStreamException)
        {
            // Not sealed by this broker's key ring (forged, edited, truncated, or from a key since deleted).
            return null;
        }
    }

    /// <summary>
    /// RFC 7636 section 4.1: a 43-character verifier from 256 bits. Derived from the browser secret (a hash under its
    /// own label, so the hash of the secret sealed into the state does not give it away), it needs no storage: who can
    /// compute it already holds this browser's binding cookie for this one login.
    /// </summary>
    private static string CodeVerifier(string browserSecret)
    {
        Span<byte> input = stackalloc byte[VerifierLabel.Length + browserSecret.Length];
        VerifierLabel.CopyTo(input);
        Encoding.ASCII.GetBytes(browserSecret, input[VerifierLabel.Length..]);
        return Base64Url.EncodeToString(SHA256.HashData(input));
    }

    /// <summary>PKCE's S256 challenge of <paramref name="verifier"/> (RFC 7636 section 4.2).</summary>
    public static string S256Challenge(string verifier) => Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));

    /// <summary>
    /// The shape of 256 bits in unpadded base64url (43 characters): a browser secret, and an S256 challenge.
    /// </summary>
    public static bool IsEncoded256Bits(string? value) => value is { Length: 43 } && value.All(IsBase64UrlCharacter);

    private static bool IsBase64UrlCharacter(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';

    /// <summary>The pending login as sealed into the state: a version byte, then the fields in order, strings length-prefixed in UTF-8.</summary>
    private sealed record SealedLogin(
        long ExpiresAt, byte[] LoginId, byte[] BrowserHash, string InstanceId, string RedirectUri, string? InstanceState, string Scope, string ResponseMode, string? Request)
    {
        public byte[] Write()
        {
            using var buffer = new MemoryStream(256);
            using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(PayloadVersion);
                writer.Write(ExpiresAt);
                writer.Write(LoginId);
                writer.Write(BrowserHash);
                writer.Write(InstanceId);
                writer.Write(RedirectUri);
                WriteOptional(writer, InstanceState);
                writer.Write(Scope);
                writer.Write(ResponseMode);
                WriteOptional(writer, Request);
            }

            return buffer.ToArray();
        }

        public static SealedLogin Read(byte[] payload)
        {
            using var reader = new BinaryReader(new MemoryStream(payload, writable: false), Encoding.UTF8);
            if (reader.ReadByte() != PayloadVersion)
            {
                throw new FormatException("Unknown sealed login version.");
            }

            var login = new SealedLogin(
                reader.ReadInt64(), reader.ReadBytes(LoginIdBytes), reader.ReadBytes(SHA256.HashSizeInBytes), reader.ReadString(), reader.ReadString(),
                ReadOptional(reader), reader.ReadString(), reader.ReadString(), ReadOptional(reader));
            return login.LoginId.Length == LoginIdBytes && login.BrowserHash.Length == SHA256.HashSizeInBytes && reader.BaseStream.Position == payload.Length
                ? login
                : throw new FormatException("Truncated sealed login.");
        }

        public override string ToString() => $"SealedLogin {{ InstanceId = {InstanceId} }}";

        private static void WriteOptional(BinaryWriter writer, string? value)
        {
            writer.Write(value is not null);
            if (value is not null)
            {
                writer.Write(value);
            }
        }

        private static string? ReadOptional(BinaryReader reader) => reader.ReadBoolean() ? reader.ReadString() : null;
    }
}
