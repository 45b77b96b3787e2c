using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Broker;
using OAuthBroker.Storage;

namespace OAuthBroker.Tokens;

/// <summary>
/// A key the broker signs with, will sign with, or signed with; <c>kid</c> is its RFC 7638 thumbprint. It signs from
/// <see cref="ActivatesAt"/> until <see cref="RetiredAt"/>, and is published in the JWKS from its creation until every
/// token it signed has expired.
/// </summary>
public sealed record SigningKey(string KeyId, string Algorithm, AsymmetricSecurityKey SecurityKey, DateTimeOffset CreatedAt, DateTimeOffset ActivatesAt, DateTimeOffset? RetiredAt);

/// <summary>A key as the admin sees it, without its material.</summary>
public sealed record SigningKeyInfo(string KeyId, string Algorithm, DateTimeOffset CreatedAt, DateTimeOffset ActivatesAt, DateTimeOffset? RetiredAt, DateTimeOffset? HonouredUntil);

/// <summary>
/// Keeps the broker's signing keys in SQLite, each private key encrypted with ASP.NET Data Protection (whose key ring
/// lives under Broker:DataPath), and caches them in memory. A key is generated at first start and survives restarts.
/// </summary>
public sealed partial class SigningKeyStore(
    ISigningKeyRepository rows,
    IDataProtectionProvider dataProtection,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<SigningKeyStore> logger)
{
    // One owner, one purpose: nothing else can unprotect what this protects.
    private readonly IDataProtector protector = dataProtection.CreateProtector("OAuthBroker.Tokens.SigningKey.v1");
    private readonly Lock publishing = new();
    private volatile IReadOnlyList<SigningKey> keys = [];
    private long loadsStarted;
    private long publishedTicket;

    /// <summary>Every key whose signatures are still honoured (for the JWKS and validation), newest first.</summary>
    public IReadOnlyList<SigningKey> Keys => keys;

    /// <summary>
    /// How long a rotated-in key is published before it signs: the JWKS's cache lifetime, plus the interval in which a
    /// running broker (or every replica) reloads keys that the CLI wrote. An instance that fetched the JWKS just before
    /// the new key appeared in it still knows the key by the time a token signed with it arrives.
    /// </summary>
    public static readonly TimeSpan PublicationLead = TokenEndpoints.JwksCacheLifetime + SigningKeyRefresher.Interval;

    /// <summary>
    /// The key new tokens are signed with now: the newest key of the configured algorithm that is active; when none is
    /// (a key rotated in with <c>--now</c> by a replica whose clock runs slightly ahead of this one's), the next key
    /// to activate, which is already in the JWKS. Replicas then agree on the key at once instead of one making another.
    /// </summary>
    public SigningKey Active => keys.FirstOrDefault(IsActive) ?? NextToActivate()
        ?? throw new InvalidOperationException("No signing key is loaded; keys are loaded at start-up.");

    public bool HasActiveKey => keys.Any(IsActive) || NextToActivate() is not null;

    /// <summary>
    /// A retired key still verifies (and stays in the JWKS) until every token it can have signed has expired: the
    /// token lifetime after its retirement, plus the clock skew validators allow.
    /// </summary>
    private TimeSpan RetiredKeyGrace => options.Value.TokenLifetime + BrokerTokenValidator.ClockSkew;

    /// <summary>
    /// Loads the honoured keys, creating one for the configured algorithm when none is active. Replicas starting
    /// together create one: the repository inserts only while no key of the algorithm is active, and the others load it.
    /// </summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        // Loads may overlap (the refresher woken by a rotation, a rotation, an unknown kid): the one started last wins,
        // so that an earlier read, finishing late, never puts back keys a later one had already left out.
        var ticket = Interlocked.Increment(ref loadsStarted);
        var loaded = await LoadHonouredAsync(cancellationToken);
        if (!loaded.Any(key => IsActive(key) || IsPending(key)))
        {
            var now = time.GetUtcNow();
            var (created, stored) = Create(options.Value.SigningAlgorithm, now);
            if (await rows.InsertIfNoneActiveAsync(stored, now.ToUnixTimeMilliseconds(), cancellationToken))
            {
                Log.Created(logger, created.KeyId, created.Algorithm);
            }

            loaded = await LoadHonouredAsync(cancellationToken);
        }

        lock (publishing)
        {
            if (ticket > publishedTicket)
            {
                keys = loaded;
                publishedTicket = ticket;
            }
        }
    }

    private async Task<List<SigningKey>> LoadHonouredAsync(CancellationToken cancellationToken)
    {
        var honouredSince = time.GetUtcNow().Subtract(RetiredKeyGrace).ToUnixTimeMilliseconds();
        return [.. (await rows.ListHonouredAsync(honouredSince, cancellationToken)).Select(Unprotect)];
    }

    /// <summary>
    /// Makes a new key and publishes it at once. Planned (<paramref name="compromised"/> false): it signs once
    /// <see cref="PublicationLead"/> has passed, and the keys before it sign until then and are honoured until their
    /// tokens expire. Compromised: it signs at once, and the keys before it are withdrawn at once, from the JWKS and from
    /// validation, so that tokens forged with them stop verifying; tokens they signed stop working too.
    /// </summary>
    public async Task<SigningKey> RotateAsync(bool compromised, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var activatesAt = compromised ? now : now + PublicationLead;
        // A withdrawn key is retired so long ago that every token it signed has expired: it is no longer loaded.
        var previousRetireAt = compromised ? now - RetiredKeyGrace - TimeSpan.FromMilliseconds(1) : activatesAt;
        var (created, stored) = Create(options.Value.SigningAlgorithm, activatesAt);
        await rows.RotateAsync(stored, previousRetireAt.ToUnixTimeMilliseconds(), cancellationToken);
        Log.Created(logger, created.KeyId, created.Algorithm);
        await LoadAsync(cancellationToken);
        Log.Rotated(logger, created.KeyId, activatesAt, compromised);
        return created;
    }

    /// <summary>
    /// Least time between reloads for a <c>kid</c> this process does not hold, so that tokens with made-up key ids cannot
    /// turn into a database query each.
    /// </summary>
    public static readonly TimeSpan UnknownKeyReloadInterval = TimeSpan.FromSeconds(5);

    private long lastUnknownKeyReload;

    /// <summary>
    /// Whether <paramref name="keyId"/> is honoured, reloading the keys first when it is unknown: a token signed by a key
    /// another replica has just rotated in is accepted at once, not after the next <see cref="SigningKeyRefresher"/> run.
    /// </summary>
    public async Task<bool> KnowsAfterReloadAsync(string keyId, CancellationToken cancellationToken)
    {
        if (Knows(keyId))
        {
            return true;
        }

        var now = time.GetUtcNow().UtcTicks;
        var last = Interlocked.Read(ref lastUnknownKeyReload);
        if (now - last < UnknownKeyReloadInterval.Ticks || Interlocked.CompareExchange(ref lastUnknownKeyReload, now, last) != last)
        {
            return false;
        }

        await LoadAsync(cancellationToken);
        var known = Knows(keyId);
        Log.ReloadedForUnknownKey(logger, keyId, known);
        return known;
    }

    private bool Knows(string keyId) => keys.Any(key => key.KeyId == keyId);

    /// <summary>Every key in the database, for <c>keys list</c>.</summary>
    public async Task<IReadOnlyList<SigningKeyInfo>> ListAsync(CancellationToken cancellationToken) =>
        [.. (await rows.ListAllAsync(cancellationToken)).Select(row =>
        {
            DateTimeOffset? retired = row.RetiredAt is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null;
            return new SigningKeyInfo(row.KeyId, row.Algorithm, DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt),
                DateTimeOffset.FromUnixTimeMilliseconds(row.ActivatesAt ?? row.CreatedAt), retired, retired?.Add(RetiredKeyGrace));
        })];

    private bool IsActive(SigningKey key)
    {
        var now = time.GetUtcNow();
        return key.Algorithm == options.Value.SigningAlgorithm && key.ActivatesAt <= now && (key.RetiredAt is not { } retired || retired > now);
    }

    /// <summary>Published, of the configured algorithm, not yet signing, and not retired before it would.</summary>
    private bool IsPending(SigningKey key)
    {
        var now = time.GetUtcNow();
        return key.Algorithm == options.Value.SigningAlgorithm && key.ActivatesAt > now && (key.RetiredAt is not { } retired || retired > key.ActivatesAt);
    }

    private SigningKey? NextToActivate() => keys.Where(IsPending).OrderBy(key => key.ActivatesAt).FirstOrDefault();

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000", Justification = "The key object is owned by the SigningKey kept for the life of the process.")]
    private (SigningKey Key, StoredSigningKey Row) Create(string algorithm, DateTimeOffset activatesAt)
    {
        var material = NewKeyMaterial(algorithm);
        var pkcs8 = material.ExportPkcs8PrivateKey();
        try
        {
            var now = time.GetUtcNow();
            var key = ToSigningKey(algorithm, material, now, activatesAt, retiredAt: null);
            return (key, new StoredSigningKey(key.KeyId, algorithm, protector.Protect(pkcs8), now.ToUnixTimeMilliseconds(), activatesAt.ToUnixTimeMilliseconds(), null));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000", Justification = "The key object is owned by the SigningKey kept for the life of the process.")]
    private SigningKey Unprotect(StoredSigningKey row)
    {
        byte[] pkcs8;
        try
        {
            pkcs8 = protector.Unprotect(row.ProtectedKey);
        }
        catch (CryptographicException exception)
        {
            throw new StartupException(
                $"Signing key {row.KeyId} cannot be decrypted: the Data Protection key ring under Broker:DataPath ({Path.Combine(Path.GetFullPath(options.Value.DataPath), DataFolder.KeyRingFolderName)}) is not the one it was protected with.",
                exception);
        }

        try
        {
            return ToSigningKey(row.Algorithm, ImportKeyMaterial(row.Algorithm, pkcs8), DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt),
                DateTimeOffset.FromUnixTimeMilliseconds(row.ActivatesAt ?? row.CreatedAt), row.RetiredAt is { } retiredAt ? DateTimeOffset.FromUnixTimeMilliseconds(retiredAt) : null);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    // The key objects live as long as the process: the store owns them and never disposes them.
    private static AsymmetricAlgorithm NewKeyMaterial(string algorithm) =>
        algorithm == SecurityAlgorithms.RsaSha256 ? RSA.Create(3072) : ECDsa.Create(ECCurve.NamedCurves.nistP256);

    private static AsymmetricAlgorithm ImportKeyMaterial(string algorithm, byte[] pkcs8)
    {
        if (algorithm == SecurityAlgorithms.RsaSha256)
        {
            var rsa = RSA.Create();
            rsa.ImportPkcs8PrivateKey(pkcs8, out _);
            return rsa;
        }

        var ecdsa = ECDsa.Create();
        ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
        return ecdsa;
    }

    private static SigningKey ToSigningKey(string algorithm, AsymmetricAlgorithm material, DateTimeOffset createdAt, DateTimeOffset activatesAt, DateTimeOffset? retiredAt)
    {
        AsymmetricSecurityKey securityKey = material is RSA rsa ? new RsaSecurityKey(rsa) : new ECDsaSecurityKey((ECDsa)material);
        var publicJwk = JsonWebKeyConverter.ConvertFromSecurityKey(securityKey);
        securityKey.KeyId = Base64UrlEncoder.Encode(publicJwk.ComputeJwkThumbprint());
        return new SigningKey(securityKey.KeyId, algorithm, securityKey, createdAt, activatesAt, retiredAt);
    }


    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Created signing key {KeyId} ({Algorithm})")]
        public static partial void Created(ILogger logger, string keyId, string algorithm);

        [LoggerMessage(EventId = 3004, Level = LogLevel.Information, Message = "Signing keys reloaded for a token with unknown key id {KeyId}; now known: {Known}")]
        public static partial void ReloadedForUnknownKey(ILogger logger, string keyId, bool known);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Signing keys rotated: {KeyId} is published and signs from {ActivatesAt:u}; earlier keys withdrawn at once: {Compromised}")]
        public static partial void Rotated(ILogger logger, string keyId, DateTimeOffset activatesAt, bool compromised);
    }
}
