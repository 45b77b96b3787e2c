using Dapper;
using FluentAssertions;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using OAuthBroker.Broker;
using OAuthBroker.Storage;

namespace OAuthBroker.Tests.Storage;

/// <summary>The one shared connection, lent in turn, on a real SQLite file.</summary>
public sealed class SqliteConnectionFactoryTests : IAsyncLifetime
{
    private readonly string folder = Directory.CreateTempSubdirectory("oauthbroker-sqlite-").FullName;
    private SqliteConnectionFactory connections = null!;

    public async Task InitializeAsync()
    {
        connections = new SqliteConnectionFactory(Options.Create(new BrokerOptions { DataPath = folder }));
        await using var lease = await connections.OpenAsync();
        await lease.Connection.ExecuteAsync("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER NOT NULL);");
    }

    public async Task DisposeAsync()
    {
        await connections.DisposeAsync();
        Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public async Task A_second_lease_waits_until_the_first_is_returned()
    {
        var first = await connections.OpenAsync();
        var second = connections.OpenAsync();

        await Task.Delay(50);
        second.IsCompleted.Should().BeFalse("only one caller holds the connection at a time");

        await first.DisposeAsync();
        await using var lease = await second.WaitAsync(TimeSpan.FromSeconds(10));
        (await lease.Connection.ExecuteScalarAsync<int>("SELECT 1")).Should().Be(1);
    }

    [Fact]
    public async Task The_connection_is_kept_between_leases()
    {
        SqliteConnection firstConnection;
        await using (var lease = await connections.OpenAsync())
        {
            firstConnection = lease.Connection;
        }

        await using var next = await connections.OpenAsync();
        next.Connection.Should().BeSameAs(firstConnection);
    }

    [Fact]
    public async Task A_transaction_left_open_is_rolled_back_and_never_reaches_the_next_caller()
    {
        SqliteConnection abandoned;
        await using (var lease = await connections.OpenAsync())
        {
            abandoned = lease.Connection;
            // A caller that failed between BEGIN and COMMIT without disposing its transaction.
            await abandoned.ExecuteAsync("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (1);");
        }

        await using var next = await connections.OpenAsync();
        next.Connection.Should().NotBeSameAs(abandoned);
        (await next.Connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM t")).Should().Be(0);
        await next.Connection.ExecuteAsync("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (2); COMMIT;");
        (await next.Connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM t")).Should().Be(1);
    }

    [Fact]
    public async Task A_prepared_statement_is_compiled_once_and_reused_with_fresh_parameters()
    {
        SqliteCommand first;
        await using (var lease = await connections.OpenAsync())
        {
            first = lease.Prepared("INSERT INTO t (v) VALUES (@v)").With("@v", 1);
            (await first.ExecuteNonQueryAsync()).Should().Be(1);
        }

        await using (var lease = await connections.OpenAsync())
        {
            var again = lease.Prepared("INSERT INTO t (v) VALUES (@v)");
            again.Should().BeSameAs(first);
            again.Parameters.Count.Should().Be(0, "values bound by the previous caller are not carried over");
            await again.With("@v", 2).ExecuteNonQueryAsync();
            (await lease.Prepared("SELECT group_concat(v) FROM t").ExecuteScalarAsync()).Should().Be("1,2");
        }
    }

    [Fact]
    public async Task A_prepared_statement_runs_inside_the_callers_transaction()
    {
        await using (var lease = await connections.OpenAsync())
        {
            await using var transaction = await lease.Connection.BeginTransactionAsync();
            await lease.Prepared("INSERT INTO t (v) VALUES (@v)", (SqliteTransaction)transaction).With("@v", 7).ExecuteNonQueryAsync();
            await transaction.RollbackAsync();
        }

        await using var next = await connections.OpenAsync();
        (await next.Prepared("SELECT COUNT(*) FROM t").ExecuteScalarAsync()).Should().Be(0L);
        await next.Prepared("INSERT INTO t (v) VALUES (@v)").With("@v", 8).ExecuteNonQueryAsync();
        (await next.Prepared("SELECT COUNT(*) FROM t").ExecuteScalarAsync()).Should().Be(1L, "the command no longer points at the rolled-back transaction");
    }

    [Fact]
    public async Task Prepared_statements_are_dropped_with_the_connection_they_were_compiled_for()
    {
        SqliteCommand before;
        await using (var lease = await connections.OpenAsync())
        {
            before = lease.Prepared("SELECT COUNT(*) FROM t");
            // A caller that failed between BEGIN and COMMIT: the connection is closed when the lease comes back.
            await lease.Connection.ExecuteAsync("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (1);");
        }

        await using var next = await connections.OpenAsync();
        var after = next.Prepared("SELECT COUNT(*) FROM t");
        after.Should().NotBeSameAs(before);
        after.Connection.Should().BeSameAs(next.Connection);
        (await after.ExecuteScalarAsync()).Should().Be(0L);
    }

    [Fact]
    public async Task A_reader_lease_keeps_no_prepared_statements()
    {
        await using var reader = await connections.OpenReaderAsync();

        var prepare = () => reader.Prepared("SELECT COUNT(*) FROM t");

        prepare.Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public async Task Writes_from_another_process_style_connection_are_seen_by_the_shared_one()
    {
        await using (var lease = await connections.OpenAsync())
        {
            (await lease.Connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM t")).Should().Be(0);
        }

        // The CLI writes from its own process, with its own connection.
        await using (var other = ConnectFromOutside())
        {
            await other.OpenAsync();
            await other.ExecuteAsync("INSERT INTO t (v) VALUES (7)");
        }

        await using var again = await connections.OpenAsync();
        (await again.Connection.ExecuteScalarAsync<long>("SELECT v FROM t")).Should().Be(7);
    }

    [Fact]
    public async Task A_returned_lease_no_longer_gives_out_the_connection()
    {
        var lease = await connections.OpenAsync();
        await lease.DisposeAsync();
        await lease.DisposeAsync();

        var use = () => lease.Connection;
        use.Should().Throw<ObjectDisposedException>();
        await using var next = await connections.OpenAsync();
        next.Connection.State.Should().Be(System.Data.ConnectionState.Open);
    }

    [Fact]
    public async Task A_large_purge_deletes_in_batches_and_lets_others_in_between()
    {
        const int total = 40 * SqliteConnectionFactory.PurgeBatch;
        await using (var lease = await connections.OpenAsync())
        {
            await lease.Connection.ExecuteAsync(
                "CREATE TABLE old_rows (id INTEGER PRIMARY KEY, at INTEGER NOT NULL); CREATE INDEX ix_old_rows_at ON old_rows (at);");
            await lease.Connection.ExecuteAsync(
                $"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {total + 10}) INSERT INTO old_rows (at) SELECT i FROM n");
        }

        var purge = Task.Run(() => connections.DeleteInBatchesAsync("old_rows", "at <= @cutoff", new Dictionary<string, object> { ["@cutoff"] = total }, CancellationToken.None));
        await using (var observer = ConnectFromOutside())
        {
            await observer.OpenAsync();
            // The first batch has gone once the oldest row has.
            while (await observer.ExecuteScalarAsync<long>("SELECT MIN(id) FROM old_rows") == 1)
            {
            }
        }

        await using (var lease = await connections.OpenAsync().WaitAsync(TimeSpan.FromSeconds(30)))
        {
            purge.IsCompleted.Should().BeFalse("a waiting caller gets the connection between two batches");
        }

        (await purge.WaitAsync(TimeSpan.FromSeconds(60))).Should().Be(total);
        await using var after = await connections.OpenAsync();
        (await after.Connection.QueryAsync<long>("SELECT at FROM old_rows ORDER BY at")).Should().Equal(Enumerable.Range(total + 1, 10).Select(i => (long)i));
    }

    [Fact]
    public async Task A_reader_runs_beside_a_held_lease_and_cannot_write()
    {
        await using var held = await connections.OpenAsync();
        await held.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (3)");

        await using var reader = await connections.OpenReaderAsync().WaitAsync(TimeSpan.FromSeconds(10));
        (await reader.Connection.ExecuteScalarAsync<long>("SELECT v FROM t")).Should().Be(3);
        var write = () => reader.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (4)");
        (await write.Should().ThrowAsync<SqliteException>()).Which.SqliteErrorCode.Should().Be(8, "SQLITE_READONLY");
    }

    [Fact]
    public async Task Batched_writers_queued_together_share_one_commit_and_each_returns_only_once_it_has_committed()
    {
        var (firstReturned, joined) = await JoinBatchAsync();
        await joined.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (2)");
        await Task.Delay(50);
        firstReturned.IsCompleted.Should().BeFalse("its write is not committed until the batch is");
        (await CountFromOutsideAsync()).Should().Be(0, "another connection sees nothing before the commit");

        await joined.DisposeAsync();
        await firstReturned.WaitAsync(TimeSpan.FromSeconds(10));
        (await CountFromOutsideAsync()).Should().Be(2);
    }

    [Fact]
    public async Task A_batch_that_SQLite_rolled_back_fails_every_member_and_the_next_caller_starts_clean()
    {
        var (firstReturned, joined) = await JoinBatchAsync();
        // What SQLite does by itself after some errors (a full disk, an I/O error): the whole transaction is gone.
        await joined.Connection.ExecuteAsync("ROLLBACK");

        var secondReturn = () => joined.DisposeAsync().AsTask();
        await secondReturn.Should().ThrowAsync<InvalidOperationException>();
        var firstReturn = () => firstReturned.WaitAsync(TimeSpan.FromSeconds(10));
        await firstReturn.Should().ThrowAsync<InvalidOperationException>("its write was rolled back with the batch, so it must not be reported as done");
        (await CountFromOutsideAsync()).Should().Be(0);

        await using (var next = await connections.OpenBatchedAsync())
        {
            await next.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (3)");
        }

        (await CountFromOutsideAsync()).Should().Be(1);
    }

    [Fact]
    public async Task A_failed_statement_in_a_batch_is_undone_alone()
    {
        var (firstReturned, second) = await JoinBatchAsync();
        await using (var joined = second)
        {
            var violate = () => joined.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (NULL)");
            (await violate.Should().ThrowAsync<SqliteException>()).Which.SqliteErrorCode.Should().Be(19, "SQLITE_CONSTRAINT");
        }

        await firstReturned.WaitAsync(TimeSpan.FromSeconds(10));
        (await CountFromOutsideAsync()).Should().Be(1);
    }

    [Fact]
    public async Task A_plain_lease_commits_the_open_batch_before_it_runs()
    {
        var batched = await connections.OpenBatchedAsync();
        await batched.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (1)");
        var plain = connections.OpenAsync();
        var batchedReturned = batched.DisposeAsync().AsTask();

        await using var lease = await plain.WaitAsync(TimeSpan.FromSeconds(10));
        await batchedReturned.WaitAsync(TimeSpan.FromSeconds(10));
        (await CountFromOutsideAsync()).Should().Be(1);
        await using var transaction = await lease.Connection.BeginTransactionAsync();
        await lease.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (2)", transaction: transaction);
        await transaction.CommitAsync();
        (await CountFromOutsideAsync()).Should().Be(2);
    }

    [Fact]
    public async Task A_batch_whose_commit_fails_fails_its_members_and_the_waiting_plain_caller_gets_a_fresh_connection()
    {
        await using (var setup = await connections.OpenAsync())
        {
            // A deferred foreign key is checked at COMMIT: the one way to make a commit itself fail on demand.
            await setup.Connection.ExecuteAsync("""
                PRAGMA foreign_keys = ON;
                CREATE TABLE parent (id INTEGER PRIMARY KEY);
                CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
                """);
        }

        var batched = await connections.OpenBatchedAsync();
        var failing = batched.Connection;
        await failing.ExecuteAsync("INSERT INTO t (v) VALUES (1); INSERT INTO child (parent_id) VALUES (999);");
        var plain = connections.OpenAsync();
        var batchedReturn = () => batched.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        await batchedReturn.Should().ThrowAsync<SqliteException>();

        await using var lease = await plain.WaitAsync(TimeSpan.FromSeconds(10));
        lease.Connection.Should().NotBeSameAs(failing, "the connection whose commit failed was closed, rolling the batch back");
        (await lease.Connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM t")).Should().Be(0);
        (await CountFromOutsideAsync()).Should().Be(0);
    }

    [Fact]
    public async Task A_batched_caller_that_gives_up_does_not_undo_the_others()
    {
        var (firstReturned, second) = await JoinBatchAsync();
        await using (var joined = second)
        {
            // A browser that went away: its request's token is cancelled while it holds the connection.
            using var gone = new CancellationTokenSource();
            await gone.CancelAsync();
            var write = () => joined.Prepared("INSERT INTO t (v) VALUES (@v)").With("@v", 2).ExecuteNonQueryAsync(gone.Token);
            await write.Should().ThrowAsync<OperationCanceledException>();
        }

        await firstReturned.WaitAsync(TimeSpan.FromSeconds(10));
        (await CountFromOutsideAsync()).Should().Be(1);
    }

    [Fact]
    public async Task A_long_queue_of_batched_writers_all_commit()
    {
        const int writers = 3 * SqliteConnectionFactory.MaxBatchMembers + 5;
        Task write(int v) => Task.Run(async () =>
        {
            await using var lease = await connections.OpenBatchedAsync();
            await lease.Prepared("INSERT INTO t (v) VALUES (@v)").With("@v", v).ExecuteNonQueryAsync();
        });

        Task[] queued;
        await using (var held = await connections.OpenAsync())
        {
            queued = [.. Enumerable.Range(1, writers).Select(write)];
            await Task.Delay(100);
        }

        await Task.WhenAll(queued).WaitAsync(TimeSpan.FromSeconds(30));
        (await CountFromOutsideAsync()).Should().Be(writers);
    }

    [Fact]
    public async Task A_batch_waiting_on_a_cancelled_caller_still_commits()
    {
        var batched = await connections.OpenBatchedAsync();
        await batched.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (1)");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        var waiting = () => connections.OpenBatchedAsync(cancel.Token);
        await waiting.Should().ThrowAsync<OperationCanceledException>();

        await batched.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        (await CountFromOutsideAsync()).Should().Be(1);
    }

    /// <summary>
    /// A batched writer that inserted 1 and gave the connection to the writer queued behind it, and that writer's
    /// lease: the first one's return completes only with their shared commit.
    /// </summary>
    private async Task<(Task FirstReturned, SqliteLease Joined)> JoinBatchAsync()
    {
        var first = await connections.OpenBatchedAsync();
        await first.Connection.ExecuteAsync("INSERT INTO t (v) VALUES (1)");
        var second = connections.OpenBatchedAsync();
        var firstReturned = first.DisposeAsync().AsTask();
        return (firstReturned, await second.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private async Task<long> CountFromOutsideAsync()
    {
        await using var observer = ConnectFromOutside();
        await observer.OpenAsync();
        return await observer.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM t");
    }

    /// <summary>A connection of its own to the same file, as another process (the CLI) would open it.</summary>
    private SqliteConnection ConnectFromOutside() => new($"Data Source={Path.Combine(folder, "broker.db")};Pooling=False");

    [Fact]
    public async Task A_cancelled_wait_gives_no_lease_and_leaves_the_turn_free()
    {
        var held = await connections.OpenAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        var waiting = () => connections.OpenAsync(cancel.Token);
        await waiting.Should().ThrowAsync<OperationCanceledException>();

        await held.DisposeAsync();
        await using var next = await connections.OpenAsync().WaitAsync(TimeSpan.FromSeconds(10));
        next.Connection.State.Should().Be(System.Data.ConnectionState.Open);
    }
}

/// <summary>Upgrading a database written by an earlier version, on a real SQLite file.</summary>
public sealed class DatabaseMigratorTests : IAsyncLifetime
{
    private readonly string folder = Directory.CreateTempSubdirectory("oauthbroker-migrate-").FullName;
    private SqliteConnectionFactory connections = null!;

    public Task InitializeAsync()
    {
        connections = new SqliteConnectionFactory(Options.Create(new BrokerOptions { DataPath = folder }));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await connections.DisposeAsync();
        Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public async Task A_version_3_database_keeps_its_users_and_gets_the_pending_logins_found_by_expiry()
    {
        await MigrateFromAsync(3, """
            INSERT INTO users (github_id, login, first_login_at, last_login_at) VALUES (42, 'octocat', 1, 1);
            INSERT INTO pending_logins (state_hash, browser_hash, instance_id, redirect_uri, scope, protected_verifier, created_at, expires_at)
            VALUES (x'00', x'00', 'trackeep', 'https://t.example/cb', 'read:user', x'00', 1, 2);
            """);

        await using var after = await connections.OpenAsync();
        (await after.Connection.ExecuteScalarAsync<int>("PRAGMA user_version")).Should().Be(DatabaseMigrator.LatestVersion);
        (await after.Connection.ExecuteScalarAsync<string>("SELECT login FROM users WHERE github_id = 42")).Should().Be("octocat");
        (await after.Connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM pending_logins")).Should().Be(0, "logins in flight at the upgrade are started again");
        var columns = (await after.Connection.QueryAsync<string>("SELECT name FROM pragma_table_info('pending_logins')")).ToList();
        columns.Should().Contain(["id", "state_hash", "expires_at", "response_mode"]);
        (await after.Connection.QueryAsync<string>("SELECT name FROM pragma_index_list('pending_logins')")).Should().Equal("ix_pending_logins_expires_at");
        columns.Should().NotContain("protected_verifier", "the PKCE verifier is derived from the browser's secret, not stored");
    }

    [Fact]
    public async Task A_version_4_database_drops_stored_verifiers_and_logins_in_flight_but_keeps_used_ones()
    {
        await MigrateFromAsync(4, """
            INSERT INTO pending_logins (state_hash, browser_hash, instance_id, redirect_uri, scope, protected_verifier, response_mode, created_at, expires_at, consumed_at)
            VALUES (x'01', x'00', 'trackeep', 'https://t.example/cb', 'read:user', x'00', 'query', 1, 2, NULL),
                   (x'02', x'00', 'trackeep', 'https://t.example/cb', 'read:user', x'00', 'query', 1, 2, 1);
            """);

        await using var after = await connections.OpenAsync();
        (await after.Connection.ExecuteScalarAsync<int>("PRAGMA user_version")).Should().Be(DatabaseMigrator.LatestVersion);
        (await after.Connection.QueryAsync<byte[]>("SELECT state_hash FROM pending_logins")).Should().BeEquivalentTo(new[] { new byte[] { 2 } },
            "a used login is kept so that its replay is still told apart; one in flight had its verifier stored and must start again");
        (await after.Connection.QueryAsync<string>("SELECT name FROM pragma_table_info('pending_logins')")).Should().NotContain("protected_verifier");
    }

    /// <summary>Builds a database at schema <paramref name="version"/> holding <paramref name="rows"/>, then migrates it to the latest.</summary>
    private async Task MigrateFromAsync(int version, string rows)
    {
        await using (var lease = await connections.OpenAsync())
        {
            foreach (var migration in DatabaseMigrator.Migrations.Take(version))
            {
                await lease.Connection.ExecuteAsync(migration);
            }

            await lease.Connection.ExecuteAsync($"PRAGMA user_version = {version};" + rows);
        }

        await new DatabaseMigrator(connections).MigrateAsync(CancellationToken.None);
    }
}
