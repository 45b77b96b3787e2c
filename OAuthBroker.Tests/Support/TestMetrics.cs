using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using OAuthBroker.Telemetry;

namespace OAuthBroker.Tests.Support;

/// <summary>The broker's instruments for a part a test builds by hand, on a meter factory of their own.</summary>
public static class TestMetrics
{
    private static readonly IMeterFactory Meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();

    public static BrokerMetrics Create() => new(Meters);
}
