using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace OAuthBroker.Webhooks;

/// <summary>The GitHub App events the broker relays to the instances they belong to.</summary>
public static class WebhookEvents
{
    /// <summary>A user revoked the app's authorization: every instance the user signed in to through the app.</summary>
    public const string AppAuthorization = "github_app_authorization";

    /// <summary>An installation was created, deleted, suspended, unsuspended or given new permissions: its instances.</summary>
    public const string Installation = "installation";

    /// <summary>Repositories were added to or removed from an installation: its instances.</summary>
    public const string InstallationRepositories = "installation_repositories";

    public static readonly FrozenSet<string> Relayed = FrozenSet.Create(StringComparer.Ordinal, AppAuthorization, Installation, InstallationRepositories);
}

/// <summary>How webhook deliveries are received and relayed (configuration section <c>Webhooks</c>); the secret is <c>GitHubApp:WebhookSecret</c>.</summary>
public sealed class WebhookOptions
{
    public const string Section = "Webhooks";

    /// <summary>A larger delivery is refused before it is read (GitHub caps its payloads at 25 MB; these events are a few KB).</summary>
    public int MaxBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>How long a relayed event is retried before it is dead-lettered.</summary>
    public TimeSpan RetryFor { get; set; } = TimeSpan.FromHours(24);

    /// <summary>The wait after the first failed attempt; it doubles with each further one, up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long an instance may take to answer one relayed event.</summary>
    public TimeSpan DeliveryTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the outbox is looked at for events that are due.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a delivery id is remembered, so that GitHub's redelivery of it is not processed twice.</summary>
    public TimeSpan DeliveryRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long delivered and dead-lettered events stay visible to admins.</summary>
    public TimeSpan OutboxRetention { get; set; } = TimeSpan.FromDays(30);
}

public sealed class WebhookOptionsValidator : IValidateOptions<WebhookOptions>
{
    public ValidateOptionsResult Validate(string? name, WebhookOptions options)
    {
        var errors = new List<string>();
        if (options.MaxBodyBytes is < 1024 or > 25 * 1024 * 1024)
        {
            errors.Add("Webhooks:MaxBodyBytes must be between 1024 and 26214400 (GitHub's own cap, 25 MB).");
        }

        Check(options.RetryFor, TimeSpan.FromSeconds(1), TimeSpan.FromDays(7), "RetryFor", errors);
        Check(options.FirstRetryDelay, TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1), "FirstRetryDelay", errors);
        Check(options.MaxRetryDelay, options.FirstRetryDelay, TimeSpan.FromDays(1), "MaxRetryDelay", errors);
        Check(options.DeliveryTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1), "DeliveryTimeout", errors);
        Check(options.PollInterval, TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(1), "PollInterval", errors);
        Check(options.DeliveryRetention, TimeSpan.FromDays(3), TimeSpan.FromDays(90), "DeliveryRetention (GitHub redelivers for 3 days)", errors);
        Check(options.OutboxRetention, TimeSpan.FromDays(1), TimeSpan.FromDays(365), "OutboxRetention", errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Check(TimeSpan value, TimeSpan min, TimeSpan max, string name, List<string> errors)
    {
        if (value < min || value > max)
        {
            errors.Add($"Webhooks:{name} must be between {min} and {max}.");
        }
    }
}

/// <summary>GitHub's webhook signature: <c>X-Hub-Signature-256: sha256=</c> and the hex HMAC-SHA256 of the raw body under the webhook secret.</summary>
public static class WebhookSignature
{
    public const string Header = "X-Hub-Signature-256";
    private const string Prefix = "sha256=";

    /// <summary>True when <paramref name="header"/> is the body's signature; compared in constant time, after a format check that reveals nothing of the secret.</summary>
    public static bool IsValid(ReadOnlySpan<byte> body, string? header, ReadOnlySpan<byte> secret)
    {
        if (header is null || header.Length != Prefix.Length + 2 * HMACSHA256.HashSizeInBytes || !header.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        Span<byte> presented = stackalloc byte[HMACSHA256.HashSizeInBytes];
        if (Convert.FromHexString(header.AsSpan(Prefix.Length), presented, out _, out var written) != System.Buffers.OperationStatus.Done || written != presented.Length)
        {
            return false;
        }

        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(secret, body, expected);
        return CryptographicOperations.FixedTimeEquals(expected, presented);
    }

    /// <summary>The header GitHub would send for <paramref name="body"/> (for tests and the fake GitHub).</summary>
    public static string Sign(ReadOnlySpan<byte> body, string secret) => Prefix + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));
}
