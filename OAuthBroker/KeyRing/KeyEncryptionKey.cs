using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Jose;
using OAuthBroker.Broker;
using OAuthBroker.Web;

namespace OAuthBroker.KeyRing;

/// <summary>
/// A key that encrypts the Data Protection key ring at rest: 256 random bits (AES key wrap, <c>A256KW</c>) or a
/// certificate with its RSA private key (<c>RSA-OAEP-256</c>). Each key-ring entry becomes a compact JWE (RFC 7516)
/// whose protected header names the key by <see cref="Id"/>, so a rotation knows which key opens which entry.
/// </summary>
public sealed class KeyEncryptionKey
{
    public const int SymmetricKeyBytes = 32;
    private static readonly byte[] IdLabel = "OAuthBroker key-encryption key id\0"u8.ToArray();

    private readonly object encryptionKey;
    private readonly object decryptionKey;

    private KeyEncryptionKey(string id, JweAlgorithm algorithm, object encryptionKey, object decryptionKey, string description)
    {
        Id = id;
        Algorithm = algorithm;
        this.encryptionKey = encryptionKey;
        this.decryptionKey = decryptionKey;
        Description = description;
    }

    /// <summary>
    /// Names the key without giving it away: a truncated SHA-256 of the 256-bit key under a label of its own, or the
    /// certificate's SHA-256 thumbprint. Shown in logs and errors so an operator can tell keys apart.
    /// </summary>
    public string Id { get; }

    public JweAlgorithm Algorithm { get; }

    /// <summary>Where the key came from (a setting or a file), for messages; never the key.</summary>
    public string Description { get; }

    /// <summary>
    /// Reads a key as configured: base64 of exactly 32 bytes, or PEM text holding a certificate and its RSA private key.
    /// A bad value is a <see cref="StartupException"/> that names <paramref name="source"/> but never repeats the value.
    /// </summary>
    public static KeyEncryptionKey Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        return trimmed.StartsWith("-----BEGIN", StringComparison.Ordinal) ? FromPem(trimmed, source) : FromBase64(trimmed, source);
    }

    /// <summary>A fresh random 256-bit key, as base64 (what <c>openssl rand -base64 32</c> prints).</summary>
    public static string NewBase64() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(SymmetricKeyBytes));

    public string Encrypt(byte[] plaintext) =>
        JWT.EncodeBytes(plaintext, encryptionKey, Algorithm, JweEncryption.A256GCM, extraHeaders: new Dictionary<string, object> { ["kid"] = Id }, settings: SourceGeneratedJoseMapper.Settings);

    /// <summary>Opens an entry this key encrypted; the algorithm is pinned, whatever the header claims.</summary>
    public byte[] Decrypt(string jwe) => JWT.DecodeBytes(jwe, decryptionKey, Algorithm, JweEncryption.A256GCM, SourceGeneratedJoseMapper.Settings);

    /// <summary>The <c>kid</c> an entry's protected header names, or null when it is no JWE of ours.</summary>
    public static string? KeyIdOf(string jwe)
    {
        try
        {
            return JWT.Headers(jwe, SourceGeneratedJoseMapper.Settings).TryGetValue("kid", out var kid) ? kid as string : null;
        }
        catch (Exception exception) when (exception is JoseException or FormatException or ArgumentException or System.Text.Json.JsonException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private static KeyEncryptionKey FromBase64(string text, string source)
    {
        var key = new byte[SymmetricKeyBytes + 3];
        if (!Convert.TryFromBase64String(text, key, out var length) || length != SymmetricKeyBytes)
        {
            var what = Convert.TryFromBase64String(text, new byte[text.Length], out var decoded) ? $"it decodes to {decoded} bytes" : "it is not base64";
            throw new StartupException(
                $"{source} must be a 256-bit key in base64 (generate one with `openssl rand -base64 32`) or a PEM certificate with its RSA private key; {what}.");
        }

        key = key[..SymmetricKeyBytes];
        var id = System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData([.. IdLabel, .. key]).AsSpan(0, 12));
        return new KeyEncryptionKey(id, JweAlgorithm.A256KW, key, key, source);
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA2000", Justification = "The RSA key is kept for the life of the process, owned by this key.")]
    private static KeyEncryptionKey FromPem(string pem, string source)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(pem, pem);
        }
        catch (CryptographicException exception)
        {
            throw new StartupException(
                $"{source} holds PEM text, but not a certificate followed by its private key (-----BEGIN CERTIFICATE----- and -----BEGIN PRIVATE KEY-----): {exception.Message}",
                exception);
        }

        using (certificate)
        {
            var rsa = certificate.GetRSAPrivateKey()
                ?? throw new StartupException($"{source} holds a certificate whose key is not RSA; the key ring is encrypted with RSA-OAEP-256, so give an RSA certificate (2048 bits or more) or a 256-bit key in base64.");
            if (rsa.KeySize < 2048)
            {
                rsa.Dispose();
                throw new StartupException($"{source} holds an RSA key of {rsa.KeySize} bits; the key ring needs 2048 bits or more.");
            }

            var id = "x5t#S256:" + System.Buffers.Text.Base64Url.EncodeToString(certificate.GetCertHash(HashAlgorithmName.SHA256));
            return new KeyEncryptionKey(id, JweAlgorithm.RSA_OAEP_256, rsa, rsa, source);
        }
    }

    public override string ToString() => $"{Id} ({Description})";
}
