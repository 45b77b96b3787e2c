using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using OAuthBroker.Allowlist;
using OAuthBroker.Tests.Support;

namespace OAuthBroker.Tests.Allowlist;

/// <summary>
/// The open-redirect corpus (Corpus/redirect-corpus.json): payloads that beat oauth2-proxy, Keycloak and others, by
/// class, against a fixed allowlist. Each refused URI is also sent through GET /auth/github: 400, never a redirect,
/// and the page never carries the raw input.
/// </summary>
public sealed class RedirectCorpusTests
{
    internal static readonly Lazy<Corpus> Cases = new(() =>
        JsonSerializer.Deserialize<Corpus>(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Allowlist", "Corpus", "redirect-corpus.json")), JsonSerializerOptions.Web)!);

    private static readonly Lazy<AllowlistSnapshot> Snapshot = new(() =>
    {
        var (instances, errors) = AllowlistFile.Parse(Encoding.UTF8.GetBytes(Cases.Value.Allowlist.GetRawText()), ["read:user"]);
        errors.Should().BeEmpty();
        return new AllowlistSnapshot(instances, "corpus", DateTimeOffset.UnixEpoch);
    });

    public static TheoryData<string, string> Accepted => ToTheory(Cases.Value.Accept);

    public static TheoryData<string, string> Refused => ToTheory(Cases.Value.Refuse);

    [Fact]
    public void The_corpus_covers_every_class_with_at_least_250_refused_and_40_accepted()
    {
        Cases.Value.Refuse.Should().HaveCountGreaterThanOrEqualTo(250);
        Cases.Value.Accept.Should().HaveCountGreaterThanOrEqualTo(40);
        Cases.Value.Refuse.Select(entry => entry.Class).Distinct().Should().Contain([
            "userinfo", "backslash", "protocol-relative", "control-or-space", "percent-encoding", "double-encoding", "dot-segments",
            "trailing-dot-or-port", "ipv4-forms", "ipv6-forms", "idn-lookalike", "unicode-lookalike", "other-scheme", "wildcard-abuse",
            "localhost-vs-loopback", "query-fragment", "over-long"]);
    }

    [Theory]
    [MemberData(nameof(Accepted))]
    public void Accepted_uri_matches(string kind, string uri)
    {
        Snapshot.Value.TryMatch(uri, out var target, out var reason).Should().BeTrue($"{kind}: {reason}");
        target!.Uri.ToString().Should().StartWith(target.Uri.Scheme + "://");
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public void Refused_uri_does_not_match_and_its_reason_does_not_echo_it(string kind, string uri)
    {
        Snapshot.Value.TryMatch(uri, out var target, out var reason).Should().BeFalse($"{kind} must be refused");
        target.Should().BeNull();
        reason.Should().NotBeNullOrEmpty();
        if (uri.Length > 3)
        {
            reason.Should().NotContain(uri);
        }
    }

    private static TheoryData<string, string> ToTheory(IEnumerable<CorpusEntry> entries)
    {
        var data = new TheoryData<string, string>();
        foreach (var entry in entries)
        {
            data.Add(entry.Class, entry.Uri);
        }

        return data;
    }

    internal sealed record Corpus(JsonElement Allowlist, List<CorpusEntry> Accept, List<CorpusEntry> Refuse);

    internal sealed record CorpusEntry(string Uri, string Class);
}

/// <summary>The refused half of the corpus through the real endpoint.</summary>
public sealed class RedirectCorpusEndpointTests : FakeGitHubTest
{
    [Fact]
    public async Task Every_refused_uri_gets_a_400_page_through_the_endpoint_never_a_redirect()
    {
        var allowlist = RedirectCorpusTests.Cases.Value.Allowlist.GetRawText();
        await using var broker = new BrokerFactory(GitHub, Folder, allowlist);
        using var client = broker.CreateClient(new() { AllowAutoRedirect = false });

        foreach (var entry in RedirectCorpusTests.Cases.Value.Refuse)
        {
            using var response = await client.GetAsync(QueryHelpers.AddQueryString("/auth/github", "redirect_uri", entry.Uri));
            // Over-long payloads are stopped earlier, by the query-length bound (414): a refusal all the same.
            response.StatusCode.Should().BeOneOf([HttpStatusCode.BadRequest, HttpStatusCode.RequestUriTooLong], $"{entry.Class}: {entry.Uri[..Math.Min(entry.Uri.Length, 120)]}");
            response.Headers.Location.Should().BeNull();
            var page = await response.Content.ReadAsStringAsync();
            if (entry.Uri.Length > 3 && entry.Uri.IndexOfAny(['<', '>', '"', '\'', '&']) >= 0)
            {
                page.Should().NotContain(entry.Uri, "the raw input never appears unescaped");
            }
        }

        GitHub.AuthorizeRequests.Should().BeEmpty();
    }
}
