namespace OAuthBroker.Tests.Support;

/// <summary>
/// A broker with the standard instances and a fake GitHub, shared by the tests of one class. Tests that change
/// GitHub's behaviour or the clock build their own <see cref="BrokerFactory"/> instead.
/// </summary>
public sealed class BrokerFixture : IAsyncLifetime
{
    public StandardInstances Instances { get; } = new();

    public FakeGitHub GitHub { get; private set; } = null!;

    public TempDirectory Folder { get; } = new();

    public BrokerFactory Factory { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        GitHub = await FakeGitHub.StartAsync();
        Factory = new BrokerFactory(GitHub, Folder, Instances.Json);
        _ = Factory.Server;
    }

    public async Task DisposeAsync()
    {
        await Factory.DisposeAsync();
        await GitHub.DisposeAsync();
        Folder.Dispose();
    }
}
