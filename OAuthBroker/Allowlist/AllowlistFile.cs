using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;

namespace OAuthBroker.Allowlist;

/// <summary>Reads and validates an allowlist document (<c>allowed-redirects.json</c>); every problem names the entry and the field.</summary>
public static partial class AllowlistFile
{
    public const int MaxFileBytes = 64 * 1024 * 1024;
    public const int MaxRedirectUrisPerInstance = 100;

    private static readonly JsonSerializerOptions SerializerOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        // A typo such as "redirectUri" or a key given twice must not silently drop a setting.
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        AllowDuplicateProperties = false,
        MaxDepth = 16,
        TypeInfoResolver = AllowlistJsonContext.Default,
    };

    /// <summary>Reads and validates the file; throws <see cref="AllowlistException"/> naming the file and every problem found.</summary>
    public static AllowlistSnapshot Load(string path, IReadOnlyCollection<string> defaultScopes, IEnumerable<AllowlistInstance> supplements, DateTimeOffset now) =>
        Build($"Allowlist file '{Path.GetFullPath(path)}'", Read(path), defaultScopes, supplements, now);

    /// <summary>The file's bytes, bounded in size; throws <see cref="AllowlistException"/> when it cannot be read.</summary>
    public static byte[] Read(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new AllowlistException(
                    $"Allowlist file '{info.FullName}' does not exist. Create it with {{\"instances\": []}} (or copy the repository's allowed-redirects.json) and add entries with 'allowlist add', "
                    + "or set Broker:AllowlistPath (environment variable Broker__AllowlistPath) to where yours is.");
            }

            if (info.Length > MaxFileBytes)
            {
                throw new AllowlistException($"Allowlist file '{info.FullName}' is larger than {MaxFileBytes} bytes.");
            }

            return File.ReadAllBytes(path);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new AllowlistException($"Allowlist file '{Path.GetFullPath(path)}' cannot be read: {exception.Message}", exception);
        }
    }

    /// <summary>
    /// Validates the whole document and builds a snapshot; throws <see cref="AllowlistException"/> listing every problem,
    /// after <paramref name="location"/> (<see cref="IAllowlistSource.Location"/>).
    /// </summary>
    public static AllowlistSnapshot Build(string location, byte[] bytes, IReadOnlyCollection<string> defaultScopes, IEnumerable<AllowlistInstance> supplements, DateTimeOffset now)
    {
        var (instances, errors) = Parse(bytes, defaultScopes);
        instances.AddRange(supplements);
        errors.AddRange(FindConflicts(instances));
        if (errors.Count > 0)
        {
            throw new AllowlistException($"{location} is invalid:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors));
        }

        return new AllowlistSnapshot(instances, Sha256(bytes), now);
    }

    public static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Parses and validates the document; returns the valid instances and a message per problem.</summary>
    public static (List<AllowlistInstance> Instances, List<string> Errors) Parse(ReadOnlySpan<byte> json, IReadOnlyCollection<string> defaultScopes)
    {
        var instances = new List<AllowlistInstance>();
        var errors = new List<string>();
        AllowlistDocument? document;
        try
        {
            document = JsonSerializer.Deserialize(json, (JsonTypeInfo<AllowlistDocument>)SerializerOptions.GetTypeInfo(typeof(AllowlistDocument)));
        }
        catch (JsonException exception)
        {
            errors.Add($"not valid allowlist JSON at {exception.Path} (line {exception.LineNumber + 1}): {exception.Message}");
            return (instances, errors);
        }

        if (document?.Instances is null)
        {
            errors.Add("the document must be an object with an \"instances\" array");
            return (instances, errors);
        }

        for (var index = 0; index < document.Instances.Count; index++)
        {
            var entry = document.Instances[index];
            var where = entry?.Id is { Length: > 0 and <= 64 } id && InstanceIdPattern().IsMatch(id) ? $"instances[{index}] (\"{id}\")" : $"instances[{index}]";
            if (entry is null)
            {
                errors.Add($"{where}: must be an object");
                continue;
            }

            var entryErrors = new List<AllowlistProblem>();
            var instance = Validate(entry, defaultScopes, entryErrors);
            errors.AddRange(entryErrors.Select(problem => $"{where}: {problem}"));
            if (instance is not null)
            {
                instances.Add(instance);
            }
        }

        return (instances, errors);
    }

    private static AllowlistInstance? Validate(InstanceDocument entry, IReadOnlyCollection<string> defaultScopes, List<AllowlistProblem> errors)
    {
        if (entry.Id is null || entry.Id.Length is 0 or > 64 || !InstanceIdPattern().IsMatch(entry.Id))
        {
            errors.Add(new("id", "is required: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"));
        }

        var redirectUris = new List<RedirectUri>();
        if (entry.RedirectUris is not { Count: > 0 and <= MaxRedirectUrisPerInstance })
        {
            errors.Add(new("redirectUris", $"must list 1 to {MaxRedirectUrisPerInstance} callback URLs"));
        }
        else
        {
            for (var i = 0; i < entry.RedirectUris.Count; i++)
            {
                if (!RedirectUri.TryParse(entry.RedirectUris[i], allowWildcard: true, out var uri, out var error))
                {
                    errors.Add(new($"redirectUris[{i}]", error));
                }
                else if (uri.Path.Length == 0)
                {
                    errors.Add(new($"redirectUris[{i}]", "has no path; register the full callback URL, such as https://host/auth/callback"));
                }
                else
                {
                    redirectUris.Add(uri);
                }
            }
        }

        var provider = entry.Provider ?? GitHub.GitHubProviders.OAuthApp;
        if (!GitHub.GitHubProviders.All.Contains(provider, StringComparer.Ordinal))
        {
            errors.Add(new("provider", "must be \"oauth-app\" (the broker's GitHub OAuth App, the default) or \"github-app\" (its GitHub App)"));
        }
        else if (provider == GitHub.GitHubProviders.GitHubApp && entry.Scopes is not null)
        {
            errors.Add(new("scopes", "has no effect with \"provider\": \"github-app\": a GitHub App reaches what its permissions allow, set in the app's settings on GitHub; remove \"scopes\""));
        }

        var scopes = entry.Scopes ?? [.. defaultScopes];
        foreach (var scope in scopes.Where(scope => !Scopes.IsValid(scope)))
        {
            errors.Add(new("scopes", $"has an invalid GitHub scope '{scope}'"));
        }

        InstanceEncryptionKey? key = null;
        var deliver = entry.DeliverAccessToken ?? true;
        if (entry.EncryptionKey is { ValueKind: not JsonValueKind.Null } keyElement)
        {
            if (!deliver)
            {
                errors.Add(new("encryptionKey", "is given although \"deliverAccessToken\" is false; remove one of them"));
            }
            else if (!InstanceEncryptionKey.TryParse(keyElement, out key, out var keyError))
            {
                errors.Add(new("encryptionKey", keyError));
            }
        }
        else if (deliver)
        {
            errors.Add(new("encryptionKey", "is needed to receive the GitHub token; or set \"deliverAccessToken\": false for login only"));
        }

        byte[]? clientSecretHash = null;
        if (entry.ClientSecret is not null && !TryParseSecretHash(entry.ClientSecret, out clientSecretHash))
        {
            errors.Add(new("clientSecret", "must be \"sha256:\" and the 64 hex digits of the secret's SHA-256 (`allowlist client-secret ID` makes one); never the secret itself"));
        }

        Microsoft.IdentityModel.Tokens.JsonWebKey? clientKey = null;
        if (entry.ClientKey is { ValueKind: not JsonValueKind.Null } clientKeyElement && !Lifecycle.ClientKey.TryParse(clientKeyElement, out clientKey, out var clientKeyError))
        {
            errors.Add(new("clientKey", clientKeyError));
        }

        var refresh = entry.Refresh ?? false;
        if (refresh && !deliver)
        {
            errors.Add(new("refresh", "needs the GitHub token to be delivered: an identity-only entry has nothing to refresh"));
        }
        else if (refresh && entry.ClientSecret is null && entry.ClientKey is null)
        {
            errors.Add(new("refresh", "needs a client credential: add \"clientKey\" (the instance's public signing key, for private_key_jwt) or \"clientSecret\" (`allowlist client-secret ID`), so that only this instance can refresh its tokens"));
        }

        var postLogout = new List<RedirectUri>();
        if (entry.PostLogoutRedirectUris is { } postLogoutUris)
        {
            if (postLogoutUris.Count > MaxRedirectUrisPerInstance)
            {
                errors.Add(new("postLogoutRedirectUris", $"may list at most {MaxRedirectUrisPerInstance} URLs"));
            }

            for (var i = 0; i < postLogoutUris.Count && i < MaxRedirectUrisPerInstance; i++)
            {
                if (!RedirectUri.TryParse(postLogoutUris[i], allowWildcard: false, out var uri, out var error))
                {
                    errors.Add(new($"postLogoutRedirectUris[{i}]", error));
                }
                else
                {
                    postLogout.Add(uri);
                }
            }
        }

        RedirectUri? webhookUrl = null;
        if (entry.WebhookUrl is { } webhook)
        {
            if (provider != GitHub.GitHubProviders.GitHubApp)
            {
                errors.Add(new("webhookUrl", "needs \"provider\": \"github-app\": only the broker's GitHub App sends webhook events"));
            }
            else if (!RedirectUri.TryParse(webhook, allowWildcard: false, out var parsed, out var webhookError))
            {
                errors.Add(new("webhookUrl", webhookError));
            }
            else
            {
                webhookUrl = parsed;
            }
        }

        var webhookEvents = Webhooks.WebhookEvents.Relayed;
        if (entry.WebhookEvents is { } events)
        {
            if (entry.WebhookUrl is null)
            {
                errors.Add(new("webhookEvents", "has no effect without \"webhookUrl\""));
            }
            else if (events.Count == 0 || events.Any(name => !Webhooks.WebhookEvents.Relayed.Contains(name)))
            {
                errors.Add(new("webhookEvents", $"must list some of {string.Join(", ", Webhooks.WebhookEvents.Relayed.Order(StringComparer.Ordinal))}"));
            }
            else
            {
                webhookEvents = events.ToFrozenSet(StringComparer.Ordinal);
            }
        }

        var isPublic = entry.Public ?? false;
        if (isPublic && (entry.ClientSecret is not null || entry.ClientKey is { ValueKind: not JsonValueKind.Null }))
        {
            errors.Add(new("public", "a public client has no credential: remove \"clientSecret\" and \"clientKey\", or \"public\""));
        }

        return errors.Count == 0
            ? new AllowlistInstance(entry.Id!, redirectUris, scopes.ToFrozenSet(StringComparer.Ordinal), key)
            {
                Public = isPublic,
                PostLogoutRedirectUris = postLogout,
                WebhookUrl = webhookUrl,
                WebhookEvents = webhookEvents,
                Provider = provider,
                RequiresState = entry.RequireState ?? false,
                Disabled = entry.Disabled ?? false,
                Refresh = refresh,
                ClientSecretHash = clientSecretHash,
                ClientKey = clientKey,
            }
            : null;
    }

    /// <summary>The prefix of a stored client secret: only its hash is ever written down.</summary>
    public const string SecretHashPrefix = "sha256:";

    /// <summary>A new 256-bit client secret, to be shown once.</summary>
    public static string NewClientSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>What an entry's <c>clientSecret</c> holds for <paramref name="secret"/>: its SHA-256, never the secret.</summary>
    public static string ClientSecretEntry(string secret) => SecretHashPrefix + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret)));

    private static bool TryParseSecretHash(string value, out byte[]? hash)
    {
        hash = null;
        if (!value.StartsWith(SecretHashPrefix, StringComparison.Ordinal) || value.Length != SecretHashPrefix.Length + 64)
        {
            return false;
        }

        var hex = value.AsSpan(SecretHashPrefix.Length);
        foreach (var c in hex)
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        hash = Convert.FromHexString(hex);
        return true;
    }

    /// <summary>Validates one instance entry on its own; the problems name its fields.</summary>
    public static IReadOnlyList<AllowlistProblem> ValidateInstance(string instanceJson, IReadOnlyCollection<string> defaultScopes)
    {
        InstanceDocument? entry;
        try
        {
            entry = JsonSerializer.Deserialize(instanceJson, (JsonTypeInfo<InstanceDocument>)SerializerOptions.GetTypeInfo(typeof(InstanceDocument)));
        }
        catch (JsonException exception)
        {
            var field = exception.Path is { Length: > 2 } path ? path.TrimStart('$', '.') : "instance";
            return [new AllowlistProblem(field, $"is not valid: {exception.Message}")];
        }

        if (entry is null)
        {
            return [new AllowlistProblem("instance", "must be a JSON object")];
        }

        var problems = new List<AllowlistProblem>();
        Validate(entry, defaultScopes, problems);
        return problems;
    }

    /// <summary>Every problem of a whole document, including ids and redirect URIs used twice.</summary>
    public static IReadOnlyList<string> Validate(ReadOnlySpan<byte> json, IReadOnlyCollection<string> defaultScopes)
    {
        var (instances, errors) = Parse(json, defaultScopes);
        errors.AddRange(FindConflicts(instances));
        return errors;
    }

    /// <summary>An id or a redirect URI may belong to one instance only: otherwise the JWT audience is ambiguous.</summary>
    private static IEnumerable<string> FindConflicts(List<AllowlistInstance> instances)
    {
        var ids = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var uris = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var instance in instances)
        {
            if (!ids.TryAdd(instance.Id, instance.Id))
            {
                yield return $"instance id \"{instance.Id}\" is used more than once (ids compare case-insensitively)";
            }

            foreach (var uri in instance.RedirectUris)
            {
                var key = AllowlistSnapshot.IndexKey(uri, uri.Path);
                if (!uris.TryAdd(key, instance.Id))
                {
                    yield return $"redirect URI {uri} of \"{instance.Id}\" is already registered for \"{uris[key]}\"";
                }
            }
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex InstanceIdPattern();

    /// <summary>The file's shape, described at build time; <see cref="SerializerOptions"/> gives the reading rules.</summary>
    [JsonSerializable(typeof(AllowlistDocument))]
    [JsonSerializable(typeof(InstanceDocument))]
    private sealed partial class AllowlistJsonContext : JsonSerializerContext;

    private sealed class AllowlistDocument
    {
        public List<InstanceDocument?>? Instances { get; set; }
    }

    private sealed class InstanceDocument
    {
        public string? Id { get; set; }

        public List<string>? RedirectUris { get; set; }

        public List<string>? Scopes { get; set; }

        public string? Provider { get; set; }

        public JsonElement? EncryptionKey { get; set; }

        public bool? DeliverAccessToken { get; set; }

        public bool? RequireState { get; set; }

        public bool? Disabled { get; set; }

        public bool? Refresh { get; set; }

        public bool? Public { get; set; }

        public List<string>? PostLogoutRedirectUris { get; set; }

        public string? WebhookUrl { get; set; }

        public List<string>? WebhookEvents { get; set; }

        public string? ClientSecret { get; set; }

        public JsonElement? ClientKey { get; set; }
    }
}

/// <summary>One problem with one field of an instance entry.</summary>
public sealed record AllowlistProblem(string Field, string Message)
{
    public override string ToString() => Field.Contains('[', StringComparison.Ordinal) ? $"{Field} {Message}" : $"\"{Field}\" {Message}";
}

public sealed class AllowlistException : Exception
{
    /// <summary>The allowlist was fine but could not be had just now (another writer held it): the same request may succeed later.</summary>
    public bool Retryable { get; init; }

    public AllowlistException()
    {
    }

    public AllowlistException(string message)
        : base(message)
    {
    }

    public AllowlistException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
