using System.Security.Cryptography;
using Dapper;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OAuthBroker.Broker;
using OAuthBroker.Storage;

namespace OAuthBroker.Tokens;

/// <summary>A key the broker signs with, or signed with; <c>kid</c> is its RFC 7638 thumbprint.</summary>
public sealed record SigningKey(string KeyId, string Algorithm, AsymmetricSecurityKey SecurityKey, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt);

/// <summary>A key as the admin sees it, without its material.</summary>
public sealed record SigningKeyInfo(string KeyId, string Algorithm, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt, DateTimeOffset? HonouredUntil);

/// <summary>
/// Keeps the broker's signing keys in SQLite, each private key encrypted with ASP.NET Data Protection (whose key ring
/// lives under Broker:DataPath), and caches them in memory. A key is generated at first start and survives restarts.
/// </summary>
public sealed partial class SigningKeyStore(
    SqliteConnectionFactory connections,
    IDataProtectionProvider dataProtection,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<SigningKeyStore> logger)
{
    // One owner, one purpose: nothing else can unprotect what this protects.
    private readonly IDataProtector protector = dataProtection.CreateProtector("OAuthBroker.Tokens.SigningKey.v1");
    private volatile IReadOnlyList<SigningKey> keys = [];

    /// <summary>Every key whose signatures are still honoured (for the JWKS and validation), newest first.</summary>
    public IReadOnlyList<SigningKey> Keys => keys;

    /// <summary>The key new tokens are signed with: the newest unretired key of the configured algorithm.</summary>
    public SigningKey Active => keys.FirstOrDefault(IsActive)
        ?? throw new InvalidOperationException("No signing key is loaded; keys are loaded at start-up.");

    public bool HasActiveKey => keys.Any(IsActive);

    /// <summary>
    /// A retired key still verifies (and stays in the JWKS) until every token it can have signed has expired: the
    /// token lifetime after its retirement, plus the clock skew validators allow.
    /// </summary>
    private TimeSpan RetiredKeyGrace => options.Value.TokenLifetime + BrokerTokenValidator.ClockSkew;

    /// <summary>Loads the honoured keys, creating one for the configured algorithm when there is none.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        var connection = lease.Connection;
        var honouredSince = time.GetUtcNow().Subtract(RetiredKeyGrace).ToUnixTimeMilliseconds();
        var rows = (await connection.QueryAsync<StoredKey>(
            $"SELECT {Columns} FROM signing_keys WHERE retired_at IS NULL OR retired_at > @honouredSince ORDER BY created_at DESC",
            new { honouredSince })).ToList();
        var loaded = rows.Select(Unprotect).ToList();

        if (!loaded.Any(IsActive))
        {
            var created = await InsertNewKeyAsync(lease, transaction: null, cancellationToken);
            loaded.Insert(0, created);
        }

        keys = loaded;
    }

    /// <summary>A new key signs from now on; the previous ones are retired but honoured until their tokens expire.</summary>
    public async Task<SigningKey> RotateAsync(CancellationToken cancellationToken)
    {
        await using (var lease = await connections.OpenAsync(cancellationToken))
        {
            var connection = lease.Connection;
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            await connection.ExecuteAsync("UPDATE signing_keys SET retired_at = @now WHERE retired_at IS NULL", new { now = time.GetUtcNow().ToUnixTimeMilliseconds() }, transaction);
            await InsertNewKeyAsync(lease, (Microsoft.Data.Sqlite.SqliteTransaction)transaction, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        await LoadAsync(cancellationToken);
        Log.Rotated(logger, Active.KeyId);
        return Active;
    }

    /// <summary>Every key in the database, for <c>keys list</c>.</summary>
    public async Task<IReadOnlyList<SigningKeyInfo>> ListAsync(CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenReaderAsync(cancellationToken);
        var connection = lease.Connection;
        var rows = await connection.QueryAsync<StoredKey>($"SELECT {Columns} FROM signing_keys ORDER BY created_at DESC");
        return [.. rows.Select(row =>
        {
            DateTimeOffset? retired = row.RetiredAt is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null;
            return new SigningKeyInfo(row.KeyId, row.Algorithm, DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt), retired, retired?.Add(RetiredKeyGrace));
        })];
    }

    private const string Columns = "kid AS KeyId, algorithm AS Algorithm, protected_key AS ProtectedKey, created_at AS CreatedAt, retired_at AS RetiredAt";

    private bool IsActive(SigningKey key) => key.RetiredAt is null && key.Algorithm == options.Value.SigningAlgorithm;

    private async Task<SigningKey> InsertNewKeyAsync(SqliteLease lease, Microsoft.Data.Sqlite.SqliteTransaction? transaction, CancellationToken cancellationToken)
    {
        var algorithm = options.Value.SigningAlgorithm;
        var (created, stored) = Create(algorithm);
        // Bound by hand: Dapper.AOT expands a byte[] parameter as a list, not as one blob.
        await lease.Prepared("INSERT INTO signing_keys (kid, algorithm, protected_key, created_at) VALUES (@kid, @algorithm, @protectedKey, @createdAt)", transaction)
            .With("@kid", stored.KeyId)
            .With("@algorithm", stored.Algorithm)
            .With("@protectedKey", stored.ProtectedKey)
            .With("@createdAt", stored.CreatedAt)
            .ExecuteNonQueryAsync(cancellationToken);
        Log.Created(logger, created.KeyId, algorithm);
        return created;
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000", Justification = "The key object is owned by the SigningKey kept for the life of the process.")]
    private (SigningKey Key, StoredKey Row) Create(string algorithm)
    {
        var material = NewKeyMaterial(algorithm);
        var pkcs8 = material.ExportPkcs8PrivateKey();
        try
        {
            var now = time.GetUtcNow();
            var key = ToSigningKey(algorithm, material, now, retiredAt: null);
            return (key, new StoredKey(key.KeyId, algorithm, protector.Protect(pkcs8), now.ToUnixTimeMilliseconds(), null));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000", Justification = "The key object is owned by the SigningKey kept for the life of the process.")]
    private SigningKey Unprotect(StoredKey row)
    {
        byte[] pkcs8;
        try
        {
            pkcs8 = protector.Unprotect(row.ProtectedKey);
        }
        catch (CryptographicException exception)
        {
            throw new StartupException(
                $"Signing key {row.KeyId} cannot be decrypted: the Data Protection key ring under Broker:DataPath ({Path.GetFullPath(options.Value.DataPath)}/keys) is not the one it was protected with.",
                exception);
        }

        try
        {
            return ToSigningKey(row.Algorithm, ImportKeyMaterial(row.Algorithm, pkcs8), DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt),
                row.RetiredAt is { } retiredAt ? DateTimeOffset.FromUnixTimeMilliseconds(retiredAt) : null);
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

    private static SigningKey ToSigningKey(string algorithm, AsymmetricAlgorithm material, DateTimeOffset createdAt, DateTimeOffset? retiredAt)
    {
        AsymmetricSecurityKey securityKey = material is RSA rsa ? new RsaSecurityKey(rsa) : new ECDsaSecurityKey((ECDsa)material);
        var publicJwk = JsonWebKeyConverter.ConvertFromSecurityKey(securityKey);
        securityKey.KeyId = Base64UrlEncoder.Encode(publicJwk.ComputeJwkThumbprint());
        return new SigningKey(securityKey.KeyId, algorithm, securityKey, createdAt, retiredAt);
    }

    internal sealed record StoredKey(string KeyId, string Algorithm, byte[] ProtectedKey, long CreatedAt, long? RetiredAt);

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Created signing key {KeyId} ({Algorithm})")]
        public static partial void Created(ILogger logger, string keyId, string algorithm);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Signing keys rotated: {KeyId} signs from now on; earlier keys verify until their tokens expire")]
        public static partial void Rotated(ILogger logger, string keyId);
    }
}
