using System.Text;
using OAuthBroker.Allowlist;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Allowlist;

public sealed class RedirectUriMatchingTests
{
    private static readonly StandardInstances Instances = new();
    private static readonly AllowlistSnapshot Snapshot = Build(Instances.Json);

    [Theory]
    [InlineData("https://trackeep.example.com/auth/callback", "trackeep-home", "https://trackeep.example.com/auth/callback")]
    [InlineData("HTTPS://TRACKEEP.EXAMPLE.COM/auth/callback", "trackeep-home", "https://trackeep.example.com/auth/callback")]
    [InlineData("https://trackeep.example.com:443/auth/callback", "trackeep-home", "https://trackeep.example.com:443/auth/callback")]
    [InlineData("https://trackeep.example.com", "trackeep-home", "https://trackeep.example.com/auth/callback")]
    [InlineData("https://trackeep.example.com/", "trackeep-home", "https://trackeep.example.com/auth/callback")]
    [InlineData("https://t1.tenants.example.net/auth/callback", "tenants", "https://t1.tenants.example.net/auth/callback")]
    [InlineData("https://a-b-c.tenants.example.net/auth/callback", "tenants", "https://a-b-c.tenants.example.net/auth/callback")]
    [InlineData("https://x.tenants.example.net", "tenants", "https://x.tenants.example.net/auth/callback")]
    [InlineData("http://127.0.0.1/callback", "loopback-app", "http://127.0.0.1/callback")]
    [InlineData("http://127.0.0.1:3000/callback", "loopback-app", "http://127.0.0.1:3000/callback")]
    [InlineData("http://[::1]:65535/callback", "loopback-app", "http://[::1]:65535/callback")]
    [InlineData("https://direct.example.org/cb", "direct-app", "https://direct.example.org/cb")]
    public void Accepted(string requested, string instanceId, string redirectTo)
    {
        Snapshot.TryMatch(requested, out var target, out var reason).Should().BeTrue(reason);

        target!.Instance.Id.Should().Be(instanceId);
        target.Uri.ToString().Should().Be(redirectTo);
    }

    [Theory]
    [InlineData("https://trackeep.example.com/auth/callback/", "not registered")]
    [InlineData("https://trackeep.example.com/auth/callbackx", "not registered")]
    [InlineData("https://trackeep.example.com/auth/CALLBACK", "not registered")]
    [InlineData("https://trackeep.example.com/auth", "not registered")]
    [InlineData("https://trackeep.example.com:8443/auth/callback", "not registered")]
    [InlineData("https://trackeep.example.com.evil.com/auth/callback", "not registered")]
    [InlineData("https://eviltrackeep.example.com/auth/callback", "not registered")]
    [InlineData("https://trackeep.example.com./auth/callback", "empty host label")]
    [InlineData("https://trackeep.example.com/auth/./callback", "'.' or '..'")]
    [InlineData("https://trackeep.example.com/x/../auth/callback", "'.' or '..'")]
    [InlineData("https://trackeep.example.com/auth/%63allback", "percent")]
    [InlineData("https://trackeep.example.com%2F@evil.com/auth/callback", "percent")]
    [InlineData("https://trackeep.example.com/auth/callback?x=1", "query")]
    [InlineData("https://trackeep.example.com/auth/callback#frag", "fragment")]
    [InlineData("https://user@trackeep.example.com/auth/callback", "user information")]
    [InlineData("https://trackeep.example.com@evil.com/auth/callback", "user information")]
    [InlineData("https://trackeep.example.com\\auth\\callback", "backslash")]
    [InlineData("https:\\\\evil.com/auth/callback", "backslash")]
    [InlineData("//evil.com/auth/callback", "absolute")]
    [InlineData("/auth/callback", "absolute")]
    [InlineData("https:/trackeep.example.com/auth/callback", "absolute")]
    [InlineData("https:///evil.com/auth/callback", "no host")]
    [InlineData("http://trackeep.example.com/auth/callback", "https")]
    [InlineData("javascript://trackeep.example.com/auth/callback", "scheme")]
    [InlineData("javascript:alert(1)", "absolute")]
    [InlineData("data:text/html,<script>", "absolute")]
    [InlineData("ftp://trackeep.example.com/auth/callback", "scheme")]
    [InlineData("https://trackeep.example.com/auth/callback\t", "control")]
    [InlineData("https://trackeep.example.com/auth/callback\r\nLocation: https://evil.com", "control")]
    [InlineData(" https://trackeep.example.com/auth/callback", "space")]
    [InlineData("https://trackeep.exаmple.com/auth/callback", "non-ASCII")]
    [InlineData("https://trackeep。example。com/auth/callback", "non-ASCII")]
    [InlineData("https://ｔrackeep.example.com/auth/callback", "non-ASCII")]
    [InlineData("https://xn--trackep-5ya.example.com/auth/callback", "not registered")]
    [InlineData("https://tenants.example.net/auth/callback", "not registered")]
    [InlineData("https://a.b.tenants.example.net/auth/callback", "not registered")]
    [InlineData("https://.tenants.example.net/auth/callback", "empty host label")]
    [InlineData("https://evil-tenants.example.net/auth/callback", "not registered")]
    [InlineData("https://x.tenants.example.net.evil.com/auth/callback", "not registered")]
    [InlineData("https://*.tenants.example.net/auth/callback", "'*'")]
    [InlineData("http://x.tenants.example.net/auth/callback", "https")]
    [InlineData("http://localhost/callback", "https")]
    [InlineData("http://localhost:3000/callback", "https")]
    [InlineData("http://127.0.0.2/callback", "https")]
    [InlineData("http://2130706433/callback", "dotted quad")]
    [InlineData("http://0x7f000001/callback", "dotted quad")]
    [InlineData("http://0177.0.0.1/callback", "dotted quad")]
    [InlineData("http://127.1/callback", "dotted quad")]
    [InlineData("http://127.000.000.001/callback", "dotted quad")]
    [InlineData("http://[::ffff:127.0.0.1]/callback", "IPv6")]
    [InlineData("http://[0:0:0:0:0:0:0:1]/callback", "IPv6")]
    [InlineData("http://[::1%25eth0]/callback", "percent")]
    [InlineData("http://127.0.0.1:0/callback", "port")]
    [InlineData("http://127.0.0.1:65536/callback", "port")]
    [InlineData("http://127.0.0.1:08080/callback", "port")]
    [InlineData("http://127.0.0.1:/callback", "port")]
    [InlineData("http://127.0.0.1:80a/callback", "port")]
    [InlineData("https://-trackeep.example.com/auth/callback", "host label")]
    [InlineData("https://trackeep_x.example.com/auth/callback", "host label")]
    [InlineData("https://trackeep.example.com/auth/call back", "space")]
    [InlineData("https://trackeep.example.com/auth/callback@evil", "path character")]
    [InlineData("https://trackeep.example.com/auth/call\"back", "path character")]
    [InlineData("https://trackeep.example.com/auth/<callback>", "path character")]
    [InlineData("", "missing")]
    [InlineData(null, "missing")]
    public void Refused(string? requested, string reasonFragment)
    {
        Snapshot.TryMatch(requested, out var target, out var reason).Should().BeFalse();

        target.Should().BeNull();
        reason.Should().Contain(reasonFragment);
        if (requested is { Length: > 0 })
        {
            reason.Should().NotContain(requested, "the reason is fixed text and never echoes the input");
        }
    }

    [Fact]
    public void Over_long_redirect_uri_is_refused()
    {
        var longPath = "https://trackeep.example.com/" + new string('a', RedirectUri.MaxLength);

        Snapshot.TryMatch(longPath, out _, out var reason).Should().BeFalse();

        reason.Should().Contain("longer than");
    }

    [Fact]
    public void Base_url_of_an_origin_with_several_callbacks_is_refused_as_ambiguous()
    {
        var snapshot = Build(new AllowlistBuilder()
            .Add("one", ["https://shared.example.com/app1/auth/callback"], null)
            .Add("two", ["https://shared.example.com/app2/auth/callback"], null)
            .ToJson());

        snapshot.TryMatch("https://shared.example.com", out _, out var reason).Should().BeFalse();

        reason.Should().Contain("several");
    }

    [Fact]
    public void Exact_entry_wins_over_a_wildcard_for_the_same_host()
    {
        var snapshot = Build(new AllowlistBuilder()
            .Add("wild", ["https://*.apps.example.com/cb"], null)
            .Add("exact", ["https://special.apps.example.com/cb"], null)
            .ToJson());

        snapshot.TryMatch("https://special.apps.example.com/cb", out var special, out _).Should().BeTrue();
        snapshot.TryMatch("https://other.apps.example.com/cb", out var other, out _).Should().BeTrue();

        special!.Instance.Id.Should().Be("exact");
        other!.Instance.Id.Should().Be("wild");
    }

    private static AllowlistSnapshot Build(string json)
    {
        var (instances, errors) = AllowlistFile.Parse(Encoding.UTF8.GetBytes(json), ["read:user", "user:email"]);
        errors.Should().BeEmpty();
        return new AllowlistSnapshot(instances, "test", DateTimeOffset.UnixEpoch);
    }
}
