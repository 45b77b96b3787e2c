using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Webhooks;

/// <summary>
/// The outbox in the real executable: events accepted while their instance is down survive an orderly restart and a
/// SIGKILL, and reach that instance (and no other) in their order once it is back.
/// </summary>
public sealed class WebhookDurabilityTests : FakeGitHubTest
{
    [Fact]
    public async Task Events_queued_for_a_dead_instance_survive_a_restart_and_a_SIGKILL_and_arrive_in_order_at_their_instance_only()
    {
        await using var owner = await WebhookReceiver.StartAsync();
        await using var bystander = await WebhookReceiver.StartAsync();
        owner.Status = _ => StatusCodes.Status503ServiceUnavailable;
        var document = JsonNode.Parse(Instances.Json)!;
        foreach (var entry in document["instances"]!.AsArray().OfType<JsonObject>().Where(entry => (string?)entry["id"] is "trackeep-home" or "legacy-rsa"))
        {
            entry["provider"] = "github-app";
            entry.Remove("scopes");
            entry["webhookUrl"] = (string?)entry["id"] == "trackeep-home" ? owner.Url : bystander.Url;
        }

        var environment = BrokerEnvironment.For(GitHub, Folder.Path, document.ToJsonString());
        environment["Webhooks__PollInterval"] = "00:00:00.050";
        environment["Webhooks__FirstRetryDelay"] = "00:00:00.100";
        environment["Webhooks__MaxRetryDelay"] = "00:00:00.300";
        // A claim the SIGKILL leaves behind lapses after two timeouts and five seconds.
        environment["Webhooks__DeliveryTimeout"] = "00:00:02";
        var baseUrl = environment["Urls"]!;
        GitHub.AppCallbackUrl = baseUrl + "/auth/github/callback";

        var broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Dll(), baseUrl, environment);
        try
        {
            await InstallAsync(baseUrl);
            using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
            for (var i = 1; i <= 5; i++)
            {
                using var delivery = GitHub.Delivery("installation_repositories", FakeGitHub.InstallationEvent("added", 4242, "octo-org", GitHub.User), deliveryId: $"durable-{i}");
                (await http.SendAsync(delivery)).StatusCode.Should().Be(HttpStatusCode.OK);
            }

            (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(owner.Attempts >= 2))).Should().BeTrue("the first event is being retried");
            broker.Terminate();
            await broker.WaitForExitAsync(TimeSpan.FromSeconds(30));
            await broker.DisposeAsync();

            broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Dll(), baseUrl, environment);
            var attempts = owner.Attempts;
            (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(20), () => Task.FromResult(owner.Attempts > attempts))).Should().BeTrue("the restarted broker goes on retrying");
            broker.KillHard();
            await broker.WaitForExitAsync(TimeSpan.FromSeconds(30));
            await broker.DisposeAsync();

            owner.Status = _ => StatusCodes.Status200OK;
            broker = await BrokerProcess.StartReadyAsync(BrokerCommand.Dll(), baseUrl, environment);
            (await Eventually.HoldsWithinAsync(TimeSpan.FromSeconds(45), () => Task.FromResult(owner.Received.Select(received => received.Delivery).Distinct().Count() == 5)))
                .Should().BeTrue(broker.Output + broker.Error);

            owner.Received.Select(received => received.Delivery).Distinct().Should().Equal("durable-1", "durable-2", "durable-3", "durable-4", "durable-5");
            bystander.Received.Should().BeEmpty();
            SecretScan.AssertAbsent(GitHub.Secrets, broker.Output + broker.Error, Path.Combine(Folder.Path, "data"));
        }
        finally
        {
            await broker.DisposeAsync();
        }
    }

    // The install relay over real sockets: the installation's events belong to trackeep-home from here on.
    private async Task InstallAsync(string baseUrl)
    {
        using var browser = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(baseUrl) };
        using var gitHubPages = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        using var start = await browser.GetAsync("/auth/github/install?redirect_uri=" + Uri.EscapeDataString(StandardInstances.TrackeepCallback) + "&state=s");
        using var installed = await gitHubPages.GetAsync(start.Headers.Location);
        using var back = await browser.GetAsync(installed.Headers.Location!.PathAndQuery);
        back.Headers.Location!.Query.Should().Contain("token=");
    }
}
