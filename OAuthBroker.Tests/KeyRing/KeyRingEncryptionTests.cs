using System.Net.Http.Json;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Xml.Linq;
using Jose;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.KeyRing;

/// <summary>
/// The Data Protection key ring (which decrypts the signing key) is encrypted at rest with a key-encryption key kept
/// outside the data folder: on disk it holds no key in plain XML, a missing or wrong key stops start-up with the key to
/// give and nothing changed, a ring from before is encrypted at its first start, and the key can be rotated.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class KeyRingEncryptionTests : FakeGitHubTest
{
    private static readonly XNamespace DataProtection = "http://schemas.asp.net/2015/03/dataProtection";

    private string DataPath => Path.Combine(Folder.Path, "data");

    private string KeyRingPath => Path.Combine(DataPath, "keys");

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task The_key_ring_holds_no_key_in_plain_XML_and_the_next_process_opens_it(string build)
    {
        var environment = Environment();
        var started = $"http://127.0.0.1:{LoopbackPort.Free()}";
        environment["Urls"] = started;
        environment["Broker__PublicUrl"] = started;

        string output;
        await using (var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), started, environment))
        {
            output = broker.Output + broker.Error;
        }

        // The framework warns when it writes a key unencrypted; the warning is not silenced, and it has no cause.
        output.Should().NotContain("unencrypted form").And.Contain("Key ring encrypted with key-encryption key " + KeyId(GitHub.KeyEncryptionKey));
        var entries = KeyRingEntries();
        entries.Should().ContainSingle();
        var entry = entries[0];
        entry.Descendants().Should().NotContain(element => element.Attribute(DataProtection + "requiresEncryption") != null, "no secret is left in plain XML");
        entry.Descendants("masterKey").Should().BeEmpty();
        var secret = entry.Descendants(DataProtection + "encryptedSecret").Should().ContainSingle().Subject;
        secret.Attribute("decryptorType")!.Value.Should().StartWith("OAuthBroker.KeyRing.KeyRingDecryptor, OAuthBroker");

        // A standard compact JWE under the configured key, naming it; opened here with the key alone.
        var jwe = secret.Descendants().Single(element => element.Name.LocalName == "jwe").Value;
        var header = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwe.Split('.')[0])).RootElement;
        header.GetProperty("alg").GetString().Should().Be("A256KW");
        header.GetProperty("enc").GetString().Should().Be("A256GCM");
        header.GetProperty("kid").GetString().Should().Be(KeyId(GitHub.KeyEncryptionKey));
        var opened = JWT.DecodeBytes(jwe, Convert.FromBase64String(GitHub.KeyEncryptionKey), JweAlgorithm.A256KW, JweEncryption.A256GCM);
        XElement.Parse(System.Text.Encoding.UTF8.GetString(opened)).Name.LocalName.Should().Be("masterKey");

        // Another process decrypts the entry (Data Protection activates the decryptor by its type name) and signs with
        // the key it made: the same key is published, and a rotation made by the command line is honoured.
        var jwksBefore = await KeyIdsAsync(build, environment);
        var rotate = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "keys", "rotate"), environment);
        rotate.ExitCode.Should().Be(0, rotate.Error);
        var jwksAfter = await KeyIdsAsync(build, environment);
        jwksAfter.Should().HaveCount(2).And.Contain(jwksBefore);
        KeyRingEntries().Should().ContainSingle("the key ring key made at first start still serves");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task A_wrong_or_missing_key_encryption_key_stops_start_up_naming_the_key_and_changes_nothing(string build)
    {
        var environment = Environment();
        (await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "keys", "rotate"), environment)).ExitCode.Should().Be(0);
        var before = Snapshot();
        var other = NewKey();

        environment["Broker__KeyEncryptionKey"] = other;
        var wrong = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build), environment);
        environment["Broker__KeyEncryptionKey"] = null;
        var missing = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build), environment);
        var missingForCommand = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "keys", "rotate"), environment);

        wrong.ShouldBeAToolError($"encrypted with key-encryption key {KeyId(GitHub.KeyEncryptionKey)}", $"the configured key is {KeyId(other)}", "Broker__KeyEncryptionKey");
        missing.ShouldBeAToolError("No key-encryption key is set", "openssl rand -base64 32", "Broker__KeyEncryptionKey", "Broker__KeyEncryptionKeyFile");
        missingForCommand.ShouldBeAToolError("OAuthBroker keys failed: No key-encryption key is set");
        (wrong.Error + missing.Error).Should().NotContain(other).And.NotContain(GitHub.KeyEncryptionKey);
        Snapshot().Should().Equal(before, "a refused start writes nothing: no schema migration, no new key-ring key");
    }

    [Fact]
    public async Task The_allowlist_commands_do_not_need_the_key_encryption_key()
    {
        var environment = Environment();
        environment["Broker__KeyEncryptionKey"] = null;

        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll("allowlist", "list"), environment);

        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("trackeep");
    }

    [Fact]
    public async Task A_key_ring_written_unencrypted_by_an_earlier_broker_is_encrypted_at_first_start_and_keeps_opening()
    {
        // What brokers before this change left: owner-only folders, the framework's file repository and no encryptor.
        const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Directory.CreateDirectory(DataPath, ownerOnly);
        Directory.CreateDirectory(KeyRingPath, ownerOnly);
        string protectedBefore;
        await using (var earlier = new ServiceCollection().AddDataProtection().SetApplicationName("OAuthBroker").PersistKeysToFileSystem(new DirectoryInfo(KeyRingPath)).Services.BuildServiceProvider())
        {
            protectedBefore = earlier.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Protect("an admin session from before");
        }

        var fileName = Path.GetFileName(Directory.GetFiles(KeyRingPath).Single());
        File.ReadAllText(Path.Combine(KeyRingPath, fileName)).Should().Contain("<masterKey", "the earlier ring holds its key in plain XML");

        await using var broker = new BrokerFactory(GitHub, Folder, Instances.Json);
        using var client = broker.CreateClient();
        (await client.GetAsync(new Uri("/readyz", UriKind.Relative))).EnsureSuccessStatusCode();

        Directory.GetFiles(KeyRingPath).Select(Path.GetFileName).Should().Equal(fileName);
        var entry = KeyRingEntries().Single();
        entry.Descendants("masterKey").Should().BeEmpty();
        entry.Descendants(DataProtection + "encryptedSecret").Should().ContainSingle();
        File.GetUnixFileMode(Path.Combine(KeyRingPath, fileName)).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        broker.Logs.Lines.Should().Contain(log => log.Message.Contains($"Key-ring entry {Path.GetFileNameWithoutExtension(fileName)} was stored unencrypted", StringComparison.Ordinal));
        broker.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Unprotect(protectedBefore).Should().Be("an admin session from before");
    }

    [Fact]
    public async Task The_key_encryption_key_rotates_through_the_previous_keys_and_the_old_key_stops_opening_the_ring()
    {
        var environment = Environment();
        var oldKey = GitHub.KeyEncryptionKey;
        (await BrokerProcess.RunToExitAsync(BrokerCommand.Dll("keys", "rotate"), environment)).ExitCode.Should().Be(0);
        var newKeyFile = Path.Combine(Folder.Path, "new-kek");
        var newKey = NewKey();
        File.WriteAllText(newKeyFile, newKey + "\n");

        // Step 1: the new key from a file, the old one as a previous key: every entry is re-encrypted at start.
        environment["Broker__KeyEncryptionKey"] = null;
        environment["Broker__KeyEncryptionKeyFile"] = newKeyFile;
        environment["Broker__PreviousKeyEncryptionKeys__0"] = oldKey;
        var during = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll("keys", "rotate"), environment);
        during.ExitCode.Should().Be(0, during.Error);
        KeyRingEntries().Should().OnlyContain(entry => KeyIdOfEntry(entry) == KeyId(newKey));

        // Step 2: the previous key is dropped; the ring opens with the new key alone, and no longer with the old one.
        environment["Broker__PreviousKeyEncryptionKeys__0"] = null;
        (await BrokerProcess.RunToExitAsync(BrokerCommand.Dll("keys", "rotate"), environment)).ExitCode.Should().Be(0);
        environment["Broker__KeyEncryptionKeyFile"] = null;
        environment["Broker__KeyEncryptionKey"] = oldKey;
        var withOldKey = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll("keys", "rotate"), environment);
        withOldKey.ShouldBeAToolError($"encrypted with key-encryption key {KeyId(newKey)}");
    }

    [Theory]
    [InlineData("dll")]
    [InlineData("native")]
    public async Task A_certificate_with_its_RSA_key_encrypts_the_ring_with_RSA_OAEP_256(string build)
    {
        using var rsa = RSA.Create(2048);
        using var certificate = new CertificateRequest("CN=OAuthBroker key ring", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        var pem = Path.Combine(Folder.Path, "kek.pem");
        File.WriteAllText(pem, certificate.ExportCertificatePem() + "\n" + rsa.ExportPkcs8PrivateKeyPem());
        var environment = Environment();
        environment["Broker__KeyEncryptionKey"] = null;
        environment["Broker__KeyEncryptionKeyFile"] = pem;

        (await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "keys", "rotate"), environment)).ExitCode.Should().Be(0);
        var second = await BrokerProcess.RunToExitAsync(BrokerCommand.Named(build, "keys", "rotate"), environment);

        second.ExitCode.Should().Be(0, second.Error);
        var jwe = KeyRingEntries().Single().Descendants().Single(element => element.Name.LocalName == "jwe").Value;
        var header = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwe.Split('.')[0])).RootElement;
        header.GetProperty("alg").GetString().Should().Be("RSA-OAEP-256");
        header.GetProperty("kid").GetString().Should().Be("x5t#S256:" + System.Buffers.Text.Base64Url.EncodeToString(certificate.GetCertHash(HashAlgorithmName.SHA256)));
        JWT.DecodeBytes(jwe, rsa, JweAlgorithm.RSA_OAEP_256, JweEncryption.A256GCM).Should().NotBeEmpty();
    }

    [Theory]
    [InlineData("c2hvcnQ=", "Broker:KeyEncryptionKey must be a 256-bit key in base64", "it decodes to 5 bytes")]
    [InlineData("not base64 at all!", "Broker:KeyEncryptionKey must be a 256-bit key in base64", "it is not base64")]
    [InlineData("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "Broker:KeyEncryptionKey holds PEM text, but not a certificate followed by its private key", "-----BEGIN PRIVATE KEY-----")]
    public async Task A_malformed_key_encryption_key_is_refused_without_repeating_it(string value, string message, string detail)
    {
        var environment = Environment();
        environment["Broker__KeyEncryptionKey"] = value;

        var result = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll(), environment);

        result.ShouldBeAToolError(message, detail);
        if (!value.StartsWith("-----", StringComparison.Ordinal))
        {
            result.Error.Should().NotContain(value);
        }
    }

    [Fact]
    public async Task Giving_the_key_two_ways_or_naming_a_missing_file_is_refused()
    {
        var environment = Environment();
        environment["Broker__KeyEncryptionKeyFile"] = Path.Combine(Folder.Path, "kek");
        var both = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll(), environment);
        environment["Broker__KeyEncryptionKey"] = null;
        var missingFile = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll(), environment);

        both.ShouldBeAToolError("Broker:KeyEncryptionKey and Broker:KeyEncryptionKeyFile are both set");
        missingFile.ShouldBeAToolError($"Broker:KeyEncryptionKeyFile names {Path.Combine(Folder.Path, "kek")}, which cannot be read");
    }

    [Fact]
    public async Task Development_without_a_key_generates_one_outside_the_data_folder_for_this_user_and_keeps_it()
    {
        var environment = Environment();
        environment["Broker__KeyEncryptionKey"] = null;
        environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        var userData = Path.Combine(Folder.Path, "user-data");
        environment["XDG_DATA_HOME"] = userData;

        var first = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll("keys", "rotate"), environment);
        var second = await BrokerProcess.RunToExitAsync(BrokerCommand.Dll("keys", "rotate"), environment);

        first.ExitCode.Should().Be(0, first.Error);
        second.ExitCode.Should().Be(0, "the generated key is kept and opens the ring next time: " + second.Error);
        var keyFile = Path.Combine(userData, "OAuthBroker", "key-encryption-key");
        File.GetUnixFileMode(keyFile).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.GetUnixFileMode(Path.GetDirectoryName(keyFile)!).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        KeyRingEntries().Should().OnlyContain(entry => KeyIdOfEntry(entry) == KeyId(File.ReadAllText(keyFile).Trim()));
    }

    private Dictionary<string, string?> Environment() => BrokerEnvironment.For(GitHub, Folder.Path, Instances.Json);

    /// <summary>The key ids a broker started on this data folder publishes.</summary>
    private static async Task<List<string>> KeyIdsAsync(string build, Dictionary<string, string?> environment)
    {
        var url = $"http://127.0.0.1:{LoopbackPort.Free()}";
        var own = new Dictionary<string, string?>(environment) { ["Urls"] = url, ["Broker__PublicUrl"] = url };
        await using var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Named(build), url, own);
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        var jwks = await http.GetFromJsonAsync<JsonElement>("/.well-known/jwks.json");
        return [.. jwks.GetProperty("keys").EnumerateArray().Select(key => key.GetProperty("kid").GetString()!)];
    }

    private List<XElement> KeyRingEntries() => [.. Directory.GetFiles(KeyRingPath, "*.xml").Select(XElement.Load)];

    private static string? KeyIdOfEntry(XElement entry) => entry.Descendants().SingleOrDefault(element => element.Name.LocalName == "encryptedKey")?.Attribute("kid")?.Value;

    private Dictionary<string, string> Snapshot() =>
        Directory.GetFiles(DataPath, "*", SearchOption.AllDirectories).ToDictionary(path => path, path => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))));

    private static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>The id the broker gives a 256-bit key: its own rule, read from its own type.</summary>
    private static string KeyId(string base64) => OAuthBroker.KeyRing.KeyEncryptionKey.Parse(base64, "test").Id;
}
