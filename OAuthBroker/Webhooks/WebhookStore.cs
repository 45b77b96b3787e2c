using Microsoft.Data.Sqlite;
using OAuthBroker.Storage;

namespace OAuthBroker.Webhooks;

/// <summary>A delivery GitHub made to the broker: its id, event name and raw JSON body. Times are Unix milliseconds.</summary>
public sealed record WebhookDelivery(string DeliveryId, string Event, string Payload, long ReceivedAt)
{
    public override string ToString() => $"WebhookDelivery {{ DeliveryId = {DeliveryId}, Event = {Event} }}";
}

/// <summary>Where one delivery goes: an instance, and the key within which its events keep their order.</summary>
public sealed record OutboxTarget(string InstanceId, string OrderingKey);

/// <summary>What the broker itself records of a delivery, in the same transaction as the delivery.</summary>
public sealed record WebhookEffects
{
    public static readonly WebhookEffects None = new();

    /// <summary>
    /// A user (by GitHub id) revoked the app: marked, the refresh tokens of <see cref="RevokedInstanceIds"/> refused, and
    /// the user's records of the app's tokens dropped (none of them lives, so none counts towards GitHub's ten).
    /// </summary>
    public long? RevokedGitHubUserId { get; init; }

    public IReadOnlyList<string> RevokedInstanceIds { get; init; } = [];

    /// <summary>An installation's new status (<c>active</c>, <c>suspended</c>, <c>deleted</c>).</summary>
    public InstallationStatus? Installation { get; init; }
}

public sealed record InstallationStatus(long InstallationId, string? AccountLogin, string Status);

/// <summary>One relayed event in the outbox, as stored. Times are Unix milliseconds.</summary>
public sealed record WebhookMessage(
    long Id, string InstanceId, string DeliveryId, string Event, string OrderingKey, string Payload, long CreatedAt, int Attempts, long NextAttemptAt, string? LastError, long? DeliveredAt, long? DeadAt)
{
    public override string ToString() => $"WebhookMessage {{ Id = {Id}, InstanceId = {InstanceId}, Event = {Event}, Attempts = {Attempts} }}";
}

/// <summary>
/// Webhook deliveries, installations and the outbox, one implementation per database. <see cref="AcceptAsync"/> is one
/// transaction: a delivery id seen before writes nothing at all; otherwise the id, every outbox row and the broker's
/// own reaction are committed together before GitHub gets its 2xx.
/// </summary>
public interface IWebhookStore
{
    Task<bool> AcceptAsync(WebhookDelivery delivery, IReadOnlyList<OutboxTarget> targets, WebhookEffects effects, CancellationToken cancellationToken);

    /// <summary>The head of each ordering key that is due and unclaimed: never an event while an earlier one of its key is pending.</summary>
    Task<IReadOnlyList<WebhookMessage>> FindDueAsync(long now, int limit, CancellationToken cancellationToken);

    /// <summary>Claims a due message until <paramref name="until"/>: true for exactly one caller across replicas.</summary>
    Task<bool> ClaimAsync(long id, long now, long until, CancellationToken cancellationToken);

    Task MarkDeliveredAsync(long id, long now, CancellationToken cancellationToken);

    Task MarkFailedAsync(long id, int attempts, long nextAttemptAt, long? deadAt, string failure, CancellationToken cancellationToken);

    /// <summary>Dead-lettered messages (<paramref name="dead"/>) or pending ones, newest first.</summary>
    Task<IReadOnlyList<WebhookMessage>> ListAsync(bool dead, int limit, CancellationToken cancellationToken);

    /// <summary>Puts a dead-lettered message back in the queue, due now, with a fresh retry window; null when it is not dead-lettered.</summary>
    Task<WebhookMessage?> RedeliverAsync(long id, long now, CancellationToken cancellationToken);

    /// <summary>Records that <paramref name="instanceId"/>'s install relay created or updated the installation.</summary>
    Task RecordInstallationAsync(long installationId, string instanceId, long? userId, string? accountLogin, long now, CancellationToken cancellationToken);

    Task<IReadOnlyList<string>> FindInstallationInstancesAsync(long installationId, CancellationToken cancellationToken);

    Task<string?> FindInstallationStatusAsync(long installationId, CancellationToken cancellationToken);

    Task<int> PurgeAsync(long deliveriesBefore, long messagesBefore, CancellationToken cancellationToken);
}

internal static class WebhookSql
{
    public const string MessageColumns = "id, instance_id, delivery_id, event, ordering_key, payload, created_at, attempts, next_attempt_at, last_error, delivered_at, dead_at";

    public static WebhookMessage Read(System.Data.Common.DbDataReader reader) => new(
        reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5), reader.GetInt64(6),
        (int)reader.GetInt64(7), reader.GetInt64(8), reader.IsDBNull(9) ? null : reader.GetString(9), reader.IsDBNull(10) ? null : reader.GetInt64(10), reader.IsDBNull(11) ? null : reader.GetInt64(11));

    public const string Pending = "delivered_at IS NULL AND dead_at IS NULL";

    /// <summary>The revoking user's records of one integration's tokens, with the dialect's parameters for the provider and the GitHub id.</summary>
    public static string ForgetTokenRecords(string provider, string gitHubId) =>
        $"DELETE FROM user_instances WHERE provider = {provider} AND user_id = (SELECT id FROM users WHERE github_id = {gitHubId})";

    /// <summary>A dead letter put back in the queue and returned as it now is, with the dialect's parameters for the time and the id.</summary>
    public static string Redeliver(string now, string id) =>
        $"UPDATE webhook_outbox SET dead_at = NULL, attempts = 0, created_at = {now}, next_attempt_at = {now}, claimed_until = NULL "
        + $"WHERE id = {id} AND dead_at IS NOT NULL AND delivered_at IS NULL RETURNING {MessageColumns}";

    /// <summary>The installation upsert, with the dialect's four parameters for id, account, status and time.</summary>
    public static string UpsertInstallation(string id, string login, string status, string now) =>
        $"INSERT INTO installations (installation_id, account_login, status, updated_at) VALUES ({id}, {login}, {status}, {now}) "
        + "ON CONFLICT (installation_id) DO UPDATE SET status = excluded.status, account_login = COALESCE(excluded.account_login, installations.account_login), updated_at = excluded.updated_at";
}

public sealed class SqliteWebhookStore(SqliteConnectionFactory connections) : IWebhookStore
{
    private static readonly string UpsertInstallation = WebhookSql.UpsertInstallation("@id", "@login", "@status", "@now");
    private static readonly string RedeliverSql = WebhookSql.Redeliver("@now", "@id");
    private static readonly string ForgetTokenRecordsSql = WebhookSql.ForgetTokenRecords("@provider", "@github");

    public async Task<bool> AcceptAsync(WebhookDelivery delivery, IReadOnlyList<OutboxTarget> targets, WebhookEffects effects, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(effects);
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var transaction = (SqliteTransaction)await lease.Connection.BeginTransactionAsync(cancellationToken);
        var now = delivery.ReceivedAt;
        if (await lease.Prepared("INSERT INTO webhook_deliveries (delivery_id, event, received_at) VALUES (@id, @event, @now) ON CONFLICT DO NOTHING", transaction)
            .With("@id", delivery.DeliveryId).With("@event", delivery.Event).With("@now", now).ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            return false;
        }

        foreach (var target in targets)
        {
            await lease.Prepared("INSERT INTO webhook_outbox (instance_id, delivery_id, event, ordering_key, payload, created_at, next_attempt_at) VALUES (@instance, @delivery, @event, @key, @payload, @now, @now)", transaction)
                .With("@instance", target.InstanceId).With("@delivery", delivery.DeliveryId).With("@event", delivery.Event).With("@key", target.OrderingKey)
                .With("@payload", delivery.Payload).With("@now", now).ExecuteNonQueryAsync(cancellationToken);
        }

        if (effects.RevokedGitHubUserId is { } gitHubId)
        {
            await lease.Prepared("UPDATE users SET revoked_at = @now WHERE github_id = @github", transaction).With("@now", now).With("@github", gitHubId).ExecuteNonQueryAsync(cancellationToken);
            await lease.Prepared(ForgetTokenRecordsSql, transaction)
                .With("@provider", GitHub.GitHubProviders.GitHubApp).With("@github", gitHubId).ExecuteNonQueryAsync(cancellationToken);
            foreach (var instance in effects.RevokedInstanceIds)
            {
                await lease.Prepared("UPDATE refresh_tokens SET revoked_at = @now WHERE revoked_at IS NULL AND answered_at IS NULL AND instance_id = @instance AND user_id = (SELECT id FROM users WHERE github_id = @github)", transaction)
                    .With("@now", now).With("@instance", instance).With("@github", gitHubId).ExecuteNonQueryAsync(cancellationToken);
            }
        }

        if (effects.Installation is { } installation)
        {
            await lease.Prepared(UpsertInstallation, transaction)
                .With("@id", installation.InstallationId).With("@login", installation.AccountLogin).With("@status", installation.Status).With("@now", now).ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    public async Task<IReadOnlyList<WebhookMessage>> FindDueAsync(long now, int limit, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await ReadAsync(lease.Prepared($"""
            SELECT {WebhookSql.MessageColumns} FROM webhook_outbox o
            WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= @now AND (o.claimed_until IS NULL OR o.claimed_until <= @now)
              AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.instance_id = o.instance_id AND p.ordering_key = o.ordering_key AND p.id < o.id AND p.delivered_at IS NULL AND p.dead_at IS NULL)
            ORDER BY o.id LIMIT @limit
            """).With("@now", now).With("@limit", limit), cancellationToken);
    }

    public async Task<bool> ClaimAsync(long id, long now, long until, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared($"UPDATE webhook_outbox SET claimed_until = @until WHERE id = @id AND {WebhookSql.Pending} AND (claimed_until IS NULL OR claimed_until <= @now)")
            .With("@until", until).With("@id", id).With("@now", now).ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task MarkDeliveredAsync(long id, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await lease.Prepared("UPDATE webhook_outbox SET delivered_at = @now, attempts = attempts + 1, claimed_until = NULL, last_error = NULL WHERE id = @id")
            .With("@now", now).With("@id", id).ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task MarkFailedAsync(long id, int attempts, long nextAttemptAt, long? deadAt, string failure, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await lease.Prepared("UPDATE webhook_outbox SET attempts = @attempts, next_attempt_at = @next, dead_at = @dead, last_error = @error, claimed_until = NULL WHERE id = @id")
            .With("@attempts", attempts).With("@next", nextAttemptAt).With("@dead", deadAt).With("@error", failure).With("@id", id).ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<WebhookMessage>> ListAsync(bool dead, int limit, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await ReadAsync(lease.Prepared(dead
            ? $"SELECT {WebhookSql.MessageColumns} FROM webhook_outbox WHERE dead_at IS NOT NULL ORDER BY id DESC LIMIT @limit"
            : $"SELECT {WebhookSql.MessageColumns} FROM webhook_outbox WHERE {WebhookSql.Pending} ORDER BY id DESC LIMIT @limit").With("@limit", limit), cancellationToken);
    }

    public async Task<WebhookMessage?> RedeliverAsync(long id, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return (await ReadAsync(lease.Prepared(RedeliverSql).With("@now", now).With("@id", id), cancellationToken)).SingleOrDefault();
    }

    public async Task RecordInstallationAsync(long installationId, string instanceId, long? userId, string? accountLogin, long now, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var transaction = (SqliteTransaction)await lease.Connection.BeginTransactionAsync(cancellationToken);
        await lease.Prepared("INSERT INTO installation_instances (installation_id, instance_id, user_id, created_at) VALUES (@id, @instance, @user, @now) ON CONFLICT DO NOTHING", transaction)
            .With("@id", installationId).With("@instance", instanceId).With("@user", userId).With("@now", now).ExecuteNonQueryAsync(cancellationToken);
        await lease.Prepared(UpsertInstallation, transaction)
            .With("@id", installationId).With("@login", accountLogin).With("@status", "active").With("@now", now).ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<string>> FindInstallationInstancesAsync(long installationId, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        await using var reader = await lease.Prepared("SELECT instance_id FROM installation_instances WHERE installation_id = @id ORDER BY instance_id").With("@id", installationId).ExecuteReaderAsync(cancellationToken);
        var instances = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            instances.Add(reader.GetString(0));
        }

        return instances;
    }

    public async Task<string?> FindInstallationStatusAsync(long installationId, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("SELECT status FROM installations WHERE installation_id = @id").With("@id", installationId).ExecuteScalarAsync(cancellationToken) as string;
    }

    public async Task<int> PurgeAsync(long deliveriesBefore, long messagesBefore, CancellationToken cancellationToken)
    {
        await using var lease = await connections.OpenAsync(cancellationToken);
        return await lease.Prepared("DELETE FROM webhook_deliveries WHERE received_at < @before").With("@before", deliveriesBefore).ExecuteNonQueryAsync(cancellationToken)
            + await lease.Prepared("DELETE FROM webhook_outbox WHERE delivered_at < @before OR dead_at < @before").With("@before", messagesBefore).ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<IReadOnlyList<WebhookMessage>> ReadAsync(SqliteCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<WebhookMessage>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(WebhookSql.Read(reader));
        }

        return rows;
    }
}

public sealed class PostgresWebhookStore(PostgresDatabase database) : IWebhookStore
{
    private static readonly string UpsertInstallation = WebhookSql.UpsertInstallation("$1", "$2", "$3", "$4");
    private static readonly string RedeliverSql = WebhookSql.Redeliver("$1", "$2");
    private static readonly string ForgetTokenRecordsSql = WebhookSql.ForgetTokenRecords("$1", "$2");

    public async Task<bool> AcceptAsync(WebhookDelivery delivery, IReadOnlyList<OutboxTarget> targets, WebhookEffects effects, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(effects);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var now = delivery.ReceivedAt;
        // A concurrent insert of the same id waits for this transaction, then finds the conflict: one of them wins.
        if (await PostgresDatabase.ExecuteOnAsync(connection, transaction, "INSERT INTO webhook_deliveries (delivery_id, event, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            cancellationToken, delivery.DeliveryId, delivery.Event, now) == 0)
        {
            return false;
        }

        foreach (var target in targets)
        {
            await PostgresDatabase.ExecuteOnAsync(connection, transaction,
                "INSERT INTO webhook_outbox (instance_id, delivery_id, event, ordering_key, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                cancellationToken, target.InstanceId, delivery.DeliveryId, delivery.Event, target.OrderingKey, delivery.Payload, now);
        }

        if (effects.RevokedGitHubUserId is { } gitHubId)
        {
            await PostgresDatabase.ExecuteOnAsync(connection, transaction, "UPDATE users SET revoked_at = $1 WHERE github_id = $2", cancellationToken, now, gitHubId);
            await PostgresDatabase.ExecuteOnAsync(connection, transaction, ForgetTokenRecordsSql, cancellationToken, GitHub.GitHubProviders.GitHubApp, gitHubId);
            foreach (var instance in effects.RevokedInstanceIds)
            {
                await PostgresDatabase.ExecuteOnAsync(connection, transaction,
                    "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND answered_at IS NULL AND instance_id = $2 AND user_id = (SELECT id FROM users WHERE github_id = $3)",
                    cancellationToken, now, instance, gitHubId);
            }
        }

        if (effects.Installation is { } installation)
        {
            await PostgresDatabase.ExecuteOnAsync(connection, transaction, UpsertInstallation, cancellationToken, installation.InstallationId, installation.AccountLogin, installation.Status, now);
        }

        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    public async Task<IReadOnlyList<WebhookMessage>> FindDueAsync(long now, int limit, CancellationToken cancellationToken) =>
        await database.QueryAsync($"""
            SELECT {WebhookSql.MessageColumns} FROM webhook_outbox o
            WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= $1 AND (o.claimed_until IS NULL OR o.claimed_until <= $1)
              AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.instance_id = o.instance_id AND p.ordering_key = o.ordering_key AND p.id < o.id AND p.delivered_at IS NULL AND p.dead_at IS NULL)
            ORDER BY o.id LIMIT $2
            """, WebhookSql.Read, cancellationToken, now, limit);

    public async Task<bool> ClaimAsync(long id, long now, long until, CancellationToken cancellationToken) =>
        await database.ExecuteAsync($"UPDATE webhook_outbox SET claimed_until = $1 WHERE id = $2 AND {WebhookSql.Pending} AND (claimed_until IS NULL OR claimed_until <= $3)", cancellationToken, until, id, now) == 1;

    public Task MarkDeliveredAsync(long id, long now, CancellationToken cancellationToken) =>
        database.ExecuteAsync("UPDATE webhook_outbox SET delivered_at = $1, attempts = attempts + 1, claimed_until = NULL, last_error = NULL WHERE id = $2", cancellationToken, now, id);

    public Task MarkFailedAsync(long id, int attempts, long nextAttemptAt, long? deadAt, string failure, CancellationToken cancellationToken) =>
        database.ExecuteAsync("UPDATE webhook_outbox SET attempts = $1, next_attempt_at = $2, dead_at = $3, last_error = $4, claimed_until = NULL WHERE id = $5",
            cancellationToken, (long)attempts, nextAttemptAt, deadAt, failure, id);

    public async Task<IReadOnlyList<WebhookMessage>> ListAsync(bool dead, int limit, CancellationToken cancellationToken) =>
        await database.QueryAsync(dead
            ? $"SELECT {WebhookSql.MessageColumns} FROM webhook_outbox WHERE dead_at IS NOT NULL ORDER BY id DESC LIMIT $1"
            : $"SELECT {WebhookSql.MessageColumns} FROM webhook_outbox WHERE {WebhookSql.Pending} ORDER BY id DESC LIMIT $1", WebhookSql.Read, cancellationToken, limit);

    public async Task<WebhookMessage?> RedeliverAsync(long id, long now, CancellationToken cancellationToken) =>
        (await database.QueryAsync(RedeliverSql, WebhookSql.Read, cancellationToken, now, id)).SingleOrDefault();

    public async Task RecordInstallationAsync(long installationId, string instanceId, long? userId, string? accountLogin, long now, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await PostgresDatabase.ExecuteOnAsync(connection, transaction, "INSERT INTO installation_instances (installation_id, instance_id, user_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            cancellationToken, installationId, instanceId, userId, now);
        await PostgresDatabase.ExecuteOnAsync(connection, transaction, UpsertInstallation, cancellationToken, installationId, accountLogin, "active", now);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<string>> FindInstallationInstancesAsync(long installationId, CancellationToken cancellationToken) =>
        await database.QueryAsync("SELECT instance_id FROM installation_instances WHERE installation_id = $1 ORDER BY instance_id", reader => reader.GetString(0), cancellationToken, installationId);

    public async Task<string?> FindInstallationStatusAsync(long installationId, CancellationToken cancellationToken) =>
        (await database.QueryAsync("SELECT status FROM installations WHERE installation_id = $1", reader => reader.GetString(0), cancellationToken, installationId)).SingleOrDefault();

    public async Task<int> PurgeAsync(long deliveriesBefore, long messagesBefore, CancellationToken cancellationToken) =>
        await database.ExecuteAsync("DELETE FROM webhook_deliveries WHERE received_at < $1", cancellationToken, deliveriesBefore)
        + await database.ExecuteAsync("DELETE FROM webhook_outbox WHERE delivered_at < $1 OR dead_at < $1", cancellationToken, messagesBefore);
}
