using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Jose;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;
using OAuthBroker.Web;

namespace OAuthBroker.Allowlist;

/// <summary><c>allowlist list|add|remove|disable|enable|client-secret|validate|check|export|import</c>: exit 0 on success, 1 on refusal, so scripts can rely on it.</summary>
public static class AllowlistCommands
{

    public static Command Create(IServiceProvider services, TextWriter output, TextWriter error)
    {
        var command = new Command("allowlist", "Inspect and edit the allowlist (allowed-redirects.json, or the database with Broker:Database=postgres). A running broker picks edits up by itself.");
        command.Add(List(services, output));
        command.Add(Add(services, output, error));
        command.Add(Remove(services, output, error));
        command.Add(SetDisabled(services, output, error, disabled: true));
        command.Add(SetDisabled(services, output, error, disabled: false));
        command.Add(ClientSecret(services, output, error));
        command.Add(Validate(services, output, error));
        command.Add(Check(services, output));
        command.Add(Export(services, output));
        command.Add(Import(services, output, error));
        return command;
    }

    private static Command List(IServiceProvider services, TextWriter output)
    {
        var list = new Command("list", "List the instances.");
        list.SetAction(async (_, cancellationToken) =>
        {
            var snapshot = await LoadAsync(services, cancellationToken);
            foreach (var instance in snapshot.Instances.Values.OrderBy(instance => instance.Id, StringComparer.Ordinal))
            {
                await output.WriteLineAsync($"{instance.Id}  token: {instance.EncryptionKey?.Algorithm ?? "none (identity only)"}  scopes: {string.Join(' ', instance.AllowedScopes.Order(StringComparer.Ordinal))}{(instance.Disabled ? "  DISABLED" : "")}");
                foreach (var uri in instance.RedirectUris)
                {
                    await output.WriteLineAsync($"    {uri}");
                }
            }

            await output.WriteLineAsync($"{snapshot.Instances.Count} instances, sha256 {snapshot.Sha256}");
            return 0;
        });
        return list;
    }

    private static Command Add(IServiceProvider services, TextWriter output, TextWriter error)
    {
        var id = new Option<string>("--id") { Description = "The instance id; it becomes the JWT aud.", Required = true };
        var redirects = new Option<string[]>("--redirect") { Description = "A callback URL (repeat for more).", Required = true, AllowMultipleArgumentsPerToken = false };
        var scopes = new Option<string[]>("--scopes") { Description = "GitHub scopes this instance may ask for (default: GitHub:Scopes).", AllowMultipleArgumentsPerToken = true };
        var keyFile = new Option<FileInfo>("--key-file") { Description = "The instance's public key: a JWK or a PEM public key (RSA or EC P-256)." };
        var algorithm = new Option<string>("--alg") { Description = "JWE algorithm for the key (default by key type: RSA-OAEP-256, ECDH-ES+A256KW, A256KW)." };
        var generateSecret = new Option<bool>("--generate-secret") { Description = "Generate a 256-bit shared secret (oct, A256KW) and print it once." };
        var identityOnly = new Option<bool>("--identity-only") { Description = "Login only: no GitHub token is delivered." };
        var stateOptional = new Option<bool>("--state-optional") { Description = "Let this instance start logins without its own state (older instances); by default state is required." };
        var provider = new Option<string>("--provider") { Description = "Which of the broker's GitHub integrations signs its users in: oauth-app (default) or github-app." };
        provider.AcceptOnlyFromAmong([.. GitHub.GitHubProviders.All]);
        var isPublic = new Option<bool>("--public") { Description = "An OpenID Connect client that cannot keep a secret (single-page or native app): no client credential, PKCE required." };
        var postLogout = new Option<string[]>("--post-logout-redirect") { Description = "Where an OpenID Connect logout may send the browser back to (repeat for more).", AllowMultipleArgumentsPerToken = false };
        var webhookUrl = new Option<string>("--webhook-url") { Description = "Where the broker relays this instance's GitHub App events (github-app entries; https, or http on loopback)." };
        var webhookEvents = new Option<string[]>("--webhook-event") { Description = "An event to relay (repeat for more; default: github_app_authorization, installation, installation_repositories).", AllowMultipleArgumentsPerToken = false };
        var add = new Command("add", "Add an instance.") { id, redirects, scopes, keyFile, algorithm, generateSecret, identityOnly, stateOptional, provider, isPublic, postLogout, webhookUrl, webhookEvents };
        add.SetAction(async (parse, cancellationToken) =>
        {
            var chosen = new[] { parse.GetValue(keyFile) is not null, parse.GetValue(generateSecret), parse.GetValue(identityOnly) }.Count(flag => flag);
            if (chosen != 1)
            {
                await error.WriteLineAsync("Give exactly one of --key-file, --generate-secret or --identity-only.");
                return 1;
            }

            var entry = new JsonObject
            {
                ["id"] = parse.GetValue(id),
                ["redirectUris"] = new JsonArray([.. parse.GetValue(redirects)!.Select(uri => JsonValue.Create(uri))]),
                ["requireState"] = !parse.GetValue(stateOptional),
            };
            if (parse.GetValue(provider) is { } chosenProvider)
            {
                entry["provider"] = chosenProvider;
            }

            if (parse.GetValue(isPublic))
            {
                entry["public"] = true;
            }

            if (parse.GetValue(postLogout) is { Length: > 0 } postLogoutUris)
            {
                entry["postLogoutRedirectUris"] = new JsonArray([.. postLogoutUris.Select(uri => JsonValue.Create(uri))]);
            }

            if (parse.GetValue(webhookUrl) is { } webhook)
            {
                entry["webhookUrl"] = webhook;
            }

            if (parse.GetValue(webhookEvents) is { Length: > 0 } events)
            {
                entry["webhookEvents"] = new JsonArray([.. events.Select(name => JsonValue.Create(name))]);
            }

            if (parse.GetValue(scopes) is { Length: > 0 } scopeList)
            {
                entry["scopes"] = new JsonArray([.. scopeList.SelectMany(Scopes.Split).Select(scope => JsonValue.Create(scope))]);
            }

            string? secretToShow = null;
            if (parse.GetValue(identityOnly))
            {
                entry["deliverAccessToken"] = false;
            }
            else if (parse.GetValue(generateSecret))
            {
                var secret = new JsonObject { ["kty"] = "oct", ["k"] = Base64Url.Encode(RandomNumberGenerator.GetBytes(32)), ["alg"] = parse.GetValue(algorithm) ?? "A256KW" };
                entry["encryptionKey"] = secret;
                secretToShow = secret.ToJsonString();
            }
            else if (!TryReadKey(parse.GetValue(keyFile)!, parse.GetValue(algorithm), out var key, out var keyError))
            {
                await error.WriteLineAsync($"--key-file: {keyError}");
                return 1;
            }
            else
            {
                entry["encryptionKey"] = key;
            }

            var outcome = await (await EditorAsync(services, cancellationToken)).AddAsync(entry, ifMatch: null, cancellationToken);
            if (!Report(outcome, error))
            {
                return 1;
            }

            await output.WriteLineAsync($"Added instance '{parse.GetValue(id)}'.");
            if (secretToShow is not null)
            {
                await output.WriteLineAsync("Give this key to the instance; it is not shown again:");
                await output.WriteLineAsync(secretToShow);
            }

            return 0;
        });
        return add;
    }

    private static Command Remove(IServiceProvider services, TextWriter output, TextWriter error)
    {
        var id = new Argument<string>("id") { Description = "The instance to remove." };
        var remove = new Command("remove", "Remove an instance.") { id };
        remove.SetAction(async (parse, cancellationToken) =>
        {
            var outcome = await (await EditorAsync(services, cancellationToken)).RemoveAsync(parse.GetValue(id)!, ifMatch: null, cancellationToken);
            if (outcome.Status == EditStatus.NotFound)
            {
                await error.WriteLineAsync($"No instance '{parse.GetValue(id)}'.");
                return 1;
            }

            if (!Report(outcome, error))
            {
                return 1;
            }

            await output.WriteLineAsync($"Removed instance '{parse.GetValue(id)}'.");
            return 0;
        });
        return remove;
    }

    /// <summary>
    /// <c>allowlist disable ID</c> / <c>enable ID</c>: the kill-switch, audited with the operating-system user who ran it
    /// (the admin API and page record the signed-in admin instead).
    /// </summary>
    private static Command SetDisabled(IServiceProvider services, TextWriter output, TextWriter error, bool disabled)
    {
        var id = new Argument<string>("id") { Description = disabled ? "The instance to disable." : "The instance to enable again." };
        var command = new Command(disabled ? "disable" : "enable", disabled
            ? "Disable an instance at once: its logins are refused and the broker JWTs it holds are no longer accepted; the entry is kept."
            : "Enable a disabled instance again.") { id };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var instanceId = parse.GetValue(id)!;
            if (await EditEntryAsync(services, error, instanceId, disabled ? "disable" : "enable",
                editor => editor.SetDisabledAsync(instanceId, disabled, ifMatch: null, cancellationToken), cancellationToken) is null)
            {
                return 1;
            }

            await output.WriteLineAsync(disabled
                ? $"Disabled instance '{instanceId}': running brokers refuse its logins and tokens as soon as they reload the allowlist."
                : $"Enabled instance '{instanceId}'.");
            return 0;
        });
        return command;
    }

    /// <summary>
    /// <c>allowlist client-secret ID</c>: a new 256-bit client secret for the token endpoint, printed once; the entry
    /// keeps only its SHA-256, so a lost secret is replaced, never recovered. Audited like the kill-switch.
    /// </summary>
    private static Command ClientSecret(IServiceProvider services, TextWriter output, TextWriter error)
    {
        var id = new Argument<string>("id") { Description = "The instance that gets a new client secret." };
        var command = new Command("client-secret", "Generate the instance's client secret for the token endpoint (refresh), print it once, and keep only its hash; replaces the previous one.") { id };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var instanceId = parse.GetValue(id)!;
            var secret = AllowlistFile.NewClientSecret();
            if (await EditEntryAsync(services, error, instanceId, "client_secret",
                editor => editor.SetClientSecretAsync(instanceId, secret, ifMatch: null, cancellationToken), cancellationToken) is null)
            {
                return 1;
            }

            await output.WriteLineAsync($"New client secret of '{instanceId}' (give it to the instance; it is not shown again):");
            await output.WriteLineAsync(secret);
            return 0;
        });
        return command;
    }

    private static Command Validate(IServiceProvider services, TextWriter output, TextWriter error)
    {
        var file = new Argument<FileInfo?>("file") { Description = "The file to check (default: the allowlist the broker serves).", Arity = ArgumentArity.ZeroOrOne };
        var validate = new Command("validate", "Check a file, or the allowlist the broker serves, with the broker's own rules, without changing anything.") { file };
        validate.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var snapshot = parse.GetValue(file) is { } given
                    ? AllowlistFile.Load(given.FullName, services.GetRequiredService<AllowlistDefaults>().Scopes, [], TimeProvider.System.GetUtcNow())
                    : await LoadAsync(services, cancellationToken);
                await output.WriteLineAsync($"Valid: {snapshot.Instances.Count} instances, sha256 {snapshot.Sha256}.");
                return 0;
            }
            catch (AllowlistException exception)
            {
                await error.WriteLineAsync(exception.Message);
                return 1;
            }
        });
        return validate;
    }

    private static Command Check(IServiceProvider services, TextWriter output)
    {
        var uri = new Argument<string>("uri") { Description = "A redirect_uri an instance sends." };
        var check = new Command("check", "Say which entry and rule accept a redirect URI, or exactly why none does.") { uri };
        check.SetAction(async (parse, cancellationToken) =>
        {
            var result = (await LoadAsync(services, cancellationToken)).Check(parse.GetValue(uri));
            if (result.Target is { } target)
            {
                await output.WriteLineAsync($"Accepted for instance '{target.Instance.Id}' by entry {target.Entry} ({target.Rule}).");
                await output.WriteLineAsync($"The browser is sent to {target.Uri}.");
                return 0;
            }

            await output.WriteLineAsync($"Refused: {result.Reason}.");
            foreach (var near in result.EntriesOnHost)
            {
                await output.WriteLineAsync($"  Entry {near.Entry} of '{near.Instance.Id}' is on this host; compare scheme, port and path, which must match exactly.");
            }

            return 1;
        });
        return check;
    }

    private static Command Export(IServiceProvider services, TextWriter output)
    {
        var file = new Argument<FileInfo>("file") { Description = "Where to write the allowlist; it may hold instances' shared secrets, so it is made readable by its owner only." };
        var export = new Command("export", "Write the allowlist the broker serves to a file, byte for byte (for a backup, or to move between SQLite and PostgreSQL).") { file };
        export.SetAction(async (parse, cancellationToken) =>
        {
            var stored = (await (await SourceAsync(services, cancellationToken)).ReadAsync(null, cancellationToken))!;
            var path = parse.GetValue(file)!.FullName;
            FileAllowlistSource.WriteAtomically(path, stored.Bytes, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            await output.WriteLineAsync($"Exported the allowlist to {path}, sha256 {stored.Sha256}.");
            return 0;
        });
        return export;
    }

    private static Command Import(IServiceProvider services, TextWriter output, TextWriter error)
    {
        var file = new Argument<FileInfo>("file") { Description = "An allowlist file; it replaces the whole allowlist if it is valid." };
        var import = new Command("import", "Replace the whole allowlist with a file, after checking it with the broker's own rules; a refused file changes nothing.") { file };
        import.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(file)!.FullName;
            var bytes = AllowlistFile.Read(path);
            var outcome = await (await EditorAsync(services, cancellationToken)).ImportAsync(bytes, cancellationToken);
            if (!Report(outcome, error))
            {
                return 1;
            }

            await output.WriteLineAsync($"Imported {path}: the allowlist is now sha256 {AllowlistFile.Sha256(bytes)}.");
            return 0;
        });
        return import;
    }

    /// <summary>
    /// Changes one entry; null (exit 1) when it does not exist or the change is refused, with the reason on
    /// <paramref name="error"/>. A change is audited with the operating-system user who ran the command; the database
    /// is checked before anything changes, so the audit row cannot be the part that fails.
    /// </summary>
    private static async Task<EditOutcome?> EditEntryAsync(
        IServiceProvider services, TextWriter error, string instanceId, string auditAction, Func<AllowlistEditor, Task<EditOutcome>> edit, CancellationToken cancellationToken)
    {
        await services.GetRequiredService<Storage.IBrokerDatabase>().MigrateAsync(cancellationToken);
        var outcome = await edit(await EditorAsync(services, cancellationToken));
        if (outcome.Status == EditStatus.NotFound)
        {
            await error.WriteLineAsync($"No instance '{instanceId}'.");
            return null;
        }

        if (!Report(outcome, error))
        {
            return null;
        }

        await services.GetRequiredService<Audit.AuditLog>().RecordAdminAsync(
            $"cli:{Environment.UserName}", auditAction, instanceId, outcome.Before, outcome.After, clientIp: null, cancellationToken);
        return outcome;
    }

    private static bool Report(EditOutcome outcome, TextWriter error)
    {
        if (outcome.Status == EditStatus.Done)
        {
            return true;
        }

        error.WriteLine($"Refused ({outcome.Status}); the allowlist was not changed:");
        foreach (var problem in outcome.Problems)
        {
            error.WriteLine($"  {problem}");
        }

        return false;
    }

    private static async Task<AllowlistSnapshot> LoadAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var source = await SourceAsync(services, cancellationToken);
        var stored = (await source.ReadAsync(null, cancellationToken))!;
        return AllowlistFile.Build(source.Location, stored.Bytes, services.GetRequiredService<AllowlistDefaults>().Scopes, [], TimeProvider.System.GetUtcNow());
    }

    private static async Task<AllowlistEditor> EditorAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        await SourceAsync(services, cancellationToken);
        return services.GetRequiredService<AllowlistEditor>();
    }

    /// <summary>
    /// The allowlist as the service sees it. In PostgreSQL it is encrypted with the key ring, so there the command needs
    /// the key-encryption key and the current schema, as the service does; the file needs neither.
    /// </summary>
    private static async Task<IAllowlistSource> SourceAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        if (services.GetRequiredService<IOptions<BrokerOptions>>().Value.UsesPostgres)
        {
            services.GetRequiredService<KeyRing.KeyRingGuard>().EnsureReady();
            await services.GetRequiredService<Storage.IBrokerDatabase>().MigrateAsync(cancellationToken);
        }

        return services.GetRequiredService<IAllowlistSource>();
    }

    private static bool TryReadKey(FileInfo file, string? algorithm, out JsonObject? key, out string? error)
    {
        key = null;
        var text = File.ReadAllText(file.FullName);
        if (text.TrimStart().StartsWith('{'))
        {
            key = JsonNode.Parse(text) as JsonObject;
        }
        else if (text.Contains("PRIVATE KEY", StringComparison.Ordinal))
        {
            error = "is a private key; give the instance's public key only";
            return false;
        }
        else
        {
            key = PemToJwk(text);
        }

        if (key is null)
        {
            error = "is neither a JWK nor a PEM public key (RSA or EC P-256)";
            return false;
        }

        if (algorithm is not null)
        {
            key["alg"] = algorithm;
        }

        error = null;
        return true;
    }

    private static JsonObject PublicJwk(Jwk jwk) =>
        JsonSerializer.SerializeToNode(jwk.ToDictionary(), JoseJsonContext.Default.IDictionaryStringObject)!.AsObject();

    private static JsonObject? PemToJwk(string pem)
    {
        try
        {
            using var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return PublicJwk(new Jwk(rsa, isPrivate: false));
        }
        catch (ArgumentException)
        {
        }
        catch (CryptographicException)
        {
        }

        try
        {
            using var ecdh = ECDiffieHellman.Create();
            ecdh.ImportFromPem(pem);
            return PublicJwk(new Jwk(ecdh, isPrivate: false));
        }
        catch (Exception exception) when (exception is ArgumentException or CryptographicException)
        {
            return null;
        }
    }
}
