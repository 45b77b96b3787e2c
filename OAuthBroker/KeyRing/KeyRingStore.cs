using System.Xml.Linq;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;
using OAuthBroker.Storage;

namespace OAuthBroker.KeyRing;

/// <summary>One entry of the Data Protection key ring: a key, or a revocation, as Data Protection wrote it.</summary>
public sealed record KeyRingEntry(string Name, XElement Element);

/// <summary>
/// Where the key ring's entries are kept: files beside the SQLite database, or a table every replica shares. Data
/// Protection's interface is synchronous; it reads the ring once a day or when it meets a key it does not know.
/// </summary>
public interface IKeyRingStore
{
    /// <summary>Where the ring lives, for messages.</summary>
    string Location { get; }

    IReadOnlyList<KeyRingEntry> ReadAll();

    /// <summary>Adds an entry Data Protection made.</summary>
    void Add(KeyRingEntry entry);

    /// <summary>Replaces an entry whole (re-encrypted under another key): a reader sees the old one or the new one.</summary>
    void Replace(KeyRingEntry entry);
}

/// <summary>The key ring as files <c>{name}.xml</c> in <c>Broker:DataPath/keys</c>, owner-only, each written whole and renamed into place.</summary>
public sealed class FileKeyRingStore(IOptions<BrokerOptions> broker) : IKeyRingStore
{
    public string Location => Path.Combine(Path.GetFullPath(broker.Value.DataPath), DataFolder.KeyRingFolderName);

    public IReadOnlyList<KeyRingEntry> ReadAll()
    {
        if (!Directory.Exists(Location))
        {
            return [];
        }

        return [.. Directory.EnumerateFiles(Location, "*.xml").Order(StringComparer.Ordinal).Select(file => new KeyRingEntry(Path.GetFileNameWithoutExtension(file), Load(file)))];
    }

    public void Add(KeyRingEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Location);
        }
        else
        {
            Directory.CreateDirectory(Location, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        Save(entry, overwrite: false);
    }

    public void Replace(KeyRingEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        Save(entry, overwrite: true);
    }

    private static XElement Load(string file)
    {
        try
        {
            return XElement.Load(file);
        }
        catch (System.Xml.XmlException exception)
        {
            throw new StartupException($"The key-ring entry {file} is not valid XML: {exception.Message} Restore it from the backup taken with the database.", exception);
        }
    }

    private void Save(KeyRingEntry entry, bool overwrite)
    {
        var file = Path.Combine(Location, entry.Name + ".xml");
        var temporary = Path.Combine(Location, $".{entry.Name}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.WriteThrough };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                entry.Element.Save(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, file, overwrite);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}

/// <summary>The key ring in the database every replica shares, so that each can open what another protected.</summary>
public sealed class PostgresKeyRingStore(PostgresDatabase database) : IKeyRingStore
{
    public string Location => "the PostgreSQL table data_protection_keys";

    /// <summary>Empty on a database not migrated yet: the ring is checked before the schema is touched.</summary>
    public IReadOnlyList<KeyRingEntry> ReadAll() =>
        Run(connection =>
        {
            using var command = PostgresDatabase.Command(connection, "SELECT name, xml FROM data_protection_keys ORDER BY name", []);
            var entries = new List<KeyRingEntry>();
            try
            {
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    entries.Add(new KeyRingEntry(reader.GetString(0), XElement.Parse(reader.GetString(1))));
                }
            }
            catch (Npgsql.PostgresException exception) when (exception.SqlState == Npgsql.PostgresErrorCodes.UndefinedTable)
            {
                return [];
            }

            return entries;
        });

    public void Add(KeyRingEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        Run(connection =>
        {
            using var command = PostgresDatabase.Command(connection, "INSERT INTO data_protection_keys (name, xml) VALUES ($1, $2)", [entry.Name, Text(entry)]);
            return command.ExecuteNonQuery();
        });
    }

    public void Replace(KeyRingEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        Run(connection =>
        {
            using var command = PostgresDatabase.Command(connection, "UPDATE data_protection_keys SET xml = $2 WHERE name = $1", [entry.Name, Text(entry)]);
            return command.ExecuteNonQuery();
        });
    }

    private static string Text(KeyRingEntry entry) => entry.Element.ToString(SaveOptions.DisableFormatting);

    private T Run<T>(Func<Npgsql.NpgsqlConnection, T> work)
    {
        using var connection = database.Open();
        return work(connection);
    }
}
