using OAuthBroker.Tests.Support;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace OAuthBroker.Tests.Topology;

/// <summary>
/// compose.yaml describes the topology the replica tests run (no Docker here to start it): two replicas of the image
/// on one PostgreSQL database with one public URL and one key-encryption key, behind nginx with deploy/nginx.conf
/// (the very site the tests' nginx serves), whose X-Forwarded-For the replicas believe.
/// </summary>
public sealed class ComposeFileTests
{
    private static readonly Dictionary<object, object> Services = Load();

    [Fact]
    public void Both_replicas_share_the_database_the_public_url_and_the_key_encryption_key()
    {
        var a = Environment("broker-a");
        var b = Environment("broker-b");

        a.Should().Equal(b);
        a["Broker__Database"].Should().Be("postgres");
        a["ConnectionStrings__Broker"].Should().StartWith("Host=postgres;").And.Contain("Database=oauthbroker");
        a["Broker__PublicUrl"].Should().Contain("${PUBLIC_URL");
        a["Broker__KeyEncryptionKeyFile"].Should().Be("/run/secrets/key-encryption-key");
        a["GitHub__ClientSecret"].Should().StartWith("${", "secrets come from the environment, never from the file");
    }

    [Fact]
    public void The_proxy_serves_deploy_nginx_conf_and_the_replicas_believe_its_address()
    {
        var proxy = Service("proxy");
        ((List<object>)proxy["volumes"]).Should().Contain("./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro");
        var address = (string)((Dictionary<object, object>)((Dictionary<object, object>)proxy["networks"])["default"])["ipv4_address"];
        Environment("broker-a")["Broker__TrustedProxies__0"].Should().Be(address);

        var site = File.ReadAllText(Path.Combine(NodeProcess.RepositoryRoot, "deploy", "nginx.conf"));
        site.Should().Contain("server broker-a:8080;").And.Contain("server broker-b:8080;");
        File.ReadAllText(Path.Combine(NodeProcess.RepositoryRoot, "Dockerfile")).Should().Contain("URLS=http://+:8080", "the replicas listen where nginx sends");
        NginxProxy.DeployedSite(["http://127.0.0.1:5001", "http://127.0.0.1:5002"], 6000).Should().Contain("server 127.0.0.1:5001;").And.Contain("listen 127.0.0.1:6000;");
    }

    [Fact]
    public void The_replicas_wait_for_a_healthy_PostgreSQL_and_the_database_keeps_its_data_in_a_volume()
    {
        var dependsOn = (Dictionary<object, object>)Service("broker-a")["depends_on"];
        ((Dictionary<object, object>)dependsOn["postgres"])["condition"].Should().Be("service_healthy");
        ((List<object>)Service("postgres")["volumes"]).Should().Contain("postgres-data:/var/lib/postgresql/data");
    }

    private static Dictionary<string, string> Environment(string service) =>
        ((Dictionary<object, object>)Service(service)["environment"]).ToDictionary(entry => (string)entry.Key, entry => (string)entry.Value, StringComparer.Ordinal);

    private static Dictionary<object, object> Service(string name) => (Dictionary<object, object>)Services[name];

    private static Dictionary<object, object> Load()
    {
        using var reader = new StringReader(File.ReadAllText(Path.Combine(NodeProcess.RepositoryRoot, "compose.yaml")));
        // The replicas share one definition through a YAML merge key (<<: *broker), as compose resolves it.
        var document = new DeserializerBuilder().Build().Deserialize<Dictionary<object, object>>(new MergingParser(new Parser(reader)));
        return (Dictionary<object, object>)document["services"];
    }
}
