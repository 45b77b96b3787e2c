using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OAuthBroker.Allowlist;
using OAuthBroker.Broker;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Allowlist;

/// <summary>The allowlist file's writer lock, as the CLI and the admin API share it: waited for, then given up on, on the broker's clock.</summary>
public sealed class AllowlistFileLockTests : IDisposable
{
    /// <summary>A real-time bound on a wait that the fake clock should already have ended: a regression fails, never hangs.</summary>
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(30);

    private readonly TempDirectory folder = new();
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => folder.Dispose();

    [Fact]
    public async Task A_writer_waits_for_the_lock_another_writer_holds_and_takes_it_once_free()
    {
        var source = Source(out var path);
        Task<IAllowlistWriter> waiting;
        await using (Hold(path))
        {
            waiting = source.LockAsync(CancellationToken.None);
            await AdvanceAsync(AllowlistLock.Timeout - TimeSpan.FromSeconds(1), waiting);
            waiting.IsCompleted.Should().BeFalse("the lock is held and the timeout has not passed");
        }

        await AdvanceAsync(TimeSpan.FromMilliseconds(500), waiting);
        await using var writer = await waiting.WaitAsync(Bounded);
        writer.Current.Bytes.Should().Equal(await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task A_writer_gives_up_after_the_timeout_with_a_message_that_names_the_file_and_writes_nothing()
    {
        var source = Source(out var path);
        var before = await File.ReadAllBytesAsync(path);
        await using (Hold(path))
        {
            var waiting = source.LockAsync(CancellationToken.None);
            await AdvanceAsync(AllowlistLock.Timeout + TimeSpan.FromSeconds(1), waiting);

            var failure = (await waiting.Invoking(task => task.WaitAsync(Bounded)).Should().ThrowAsync<AllowlistException>()).Which;
            failure.Message.Should().Contain(path).And.Contain("locked by another writer").And.Contain("nothing was written");
        }

        (await File.ReadAllBytesAsync(path)).Should().Equal(before);
    }

    [Fact]
    public async Task A_lock_file_that_cannot_be_opened_for_another_reason_is_reported_as_that_not_as_a_busy_allowlist()
    {
        // A name the file system takes, whose lock file's name (".lock" appended) it refuses: ENAMETOOLONG, not a lock.
        var source = Source(out _, new string('a', 250) + ".json");
        var waiting = source.LockAsync(CancellationToken.None);
        await AdvanceAsync(AllowlistLock.Timeout + TimeSpan.FromSeconds(1), waiting);

        await waiting.Invoking(task => task.WaitAsync(Bounded)).Should().ThrowExactlyAsync<PathTooLongException>();
    }

    private FileAllowlistSource Source(out string path, string name = "allowed-redirects.json")
    {
        path = Path.Combine(folder.Path, name);
        File.WriteAllText(path, """{ "instances": [ { "id": "a", "redirectUris": ["https://a.example.com/cb"], "deliverAccessToken": false } ] }""");
        return new FileAllowlistSource(Options.Create(new BrokerOptions { AllowlistPath = path }), clock);
    }

    /// <summary>What the allowlist command holds while it edits: the lock file, exclusively (flock).</summary>
    private static FileStream Hold(string path) => new(path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);

    /// <summary>Moves the clock a lock poll at a time, until <paramref name="span"/> has passed or <paramref name="waiter"/> is done.</summary>
    private Task AdvanceAsync(TimeSpan span, Task waiter) => clock.AdvanceWhilePendingAsync(waiter, span, AllowlistLock.Poll);
}
