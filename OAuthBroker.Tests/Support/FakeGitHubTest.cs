namespace OAuthBroker.Tests.Support;

/// <summary>
/// For test classes that build their own broker(s): a fresh fake GitHub, temporary folder and standard instances per
/// test. Classes that can share one broker use <see cref="BrokerFixture"/> instead.
/// </summary>
public abstract class FakeGitHubTest : IAsyncLifetime
{
    protected TempDirectory Folder { get; } = new();

    protected StandardInstances Instances { get; } = new();

    protected FakeGitHub GitHub { get; private set; } = null!;

    public virtual async Task InitializeAsync() => GitHub = await FakeGitHub.StartAsync();

    public virtual async Task DisposeAsync()
    {
        await GitHub.DisposeAsync();
        Folder.Dispose();
    }
}
