using OAuthBroker.Cli;

namespace OAuthBroker.Tests.Cli;

/// <summary>How the process reads its arguments before anything starts: strictly, so a typo never starts a server.</summary>
public sealed class BrokerInvocationTests
{
    [Theory]
    [InlineData("", InvocationKind.Serve, false)]
    [InlineData("--demo", InvocationKind.Serve, true)]
    [InlineData("--urls http://127.0.0.1:5192 --demo", InvocationKind.Serve, true)]
    [InlineData("--urls=http://127.0.0.1:5192", InvocationKind.Serve, false)]
    [InlineData("--Broker:PublicUrl=https://oauth.example.com", InvocationKind.Serve, false)]
    [InlineData("--broker:publicurl https://oauth.example.com", InvocationKind.Serve, false)]
    [InlineData("--Broker= --environment=Testing --contentRoot=/app", InvocationKind.Serve, false)]
    [InlineData("--help", InvocationKind.Help, false)]
    [InlineData("-h", InvocationKind.Help, false)]
    [InlineData("help", InvocationKind.Help, false)]
    [InlineData("--version", InvocationKind.Version, false)]
    [InlineData("allowlist list", InvocationKind.Command, false)]
    [InlineData("keys rotate", InvocationKind.Command, false)]
    [InlineData("health", InvocationKind.Command, false)]
    [InlineData("--dmeo", InvocationKind.Unknown, false)]
    [InlineData("--demo --help", InvocationKind.Unknown, false)]
    [InlineData("serve", InvocationKind.Unknown, false)]
    [InlineData("--urls", InvocationKind.Unknown, false)]
    [InlineData("--Brokr:PublicUrl=https://oauth.example.com", InvocationKind.Unknown, false)]
    [InlineData("-demo", InvocationKind.Unknown, false)]
    public void Arguments_are_read_strictly(string arguments, InvocationKind kind, bool demo)
    {
        var invocation = BrokerInvocation.Parse(arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries));

        invocation.Kind.Should().Be(kind);
        invocation.Demo.Should().Be(demo);
        if (kind == InvocationKind.Serve)
        {
            invocation.HostArguments.Should().NotContain("--demo", "the configuration parser would read it as a key without a value");
        }
    }
}
