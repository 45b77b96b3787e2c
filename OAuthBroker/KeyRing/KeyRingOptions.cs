namespace OAuthBroker.KeyRing;

/// <summary>
/// The key-encryption key of the Data Protection key ring (configuration section <c>Broker</c>). It is kept outside the
/// data folder (environment, secret store, a mounted secret file), so that a copy of the data folder (a backup, a
/// volume snapshot, a user who can read it) does not carry what decrypts the signing key.
/// </summary>
public sealed class KeyRingOptions
{
    /// <summary>Base64 of 32 random bytes (<c>openssl rand -base64 32</c>), or PEM text with a certificate and its RSA private key.</summary>
    public string? KeyEncryptionKey { get; set; }

    /// <summary>A file holding the same (a Docker or Kubernetes secret); instead of <see cref="KeyEncryptionKey"/>.</summary>
    public string? KeyEncryptionKeyFile { get; set; }

    /// <summary>Keys that were the key-encryption key before a rotation: they open entries still encrypted with them, which are re-encrypted with the current key at start-up.</summary>
    public string[] PreviousKeyEncryptionKeys { get; set; } = [];

    /// <summary>Files holding previous keys.</summary>
    public string[] PreviousKeyEncryptionKeyFiles { get; set; } = [];
}
