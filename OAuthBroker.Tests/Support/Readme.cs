using System.Text.RegularExpressions;

namespace OAuthBroker.Tests.Support;

/// <summary>The shell blocks of the README and of docs/, read as a user reads them, so tests run the commands as written.</summary>
public static partial class Readme
{
    public static string Text => TextOf("README.md");

    /// <summary>A documentation file by its path from the repository root ("docs/administration.md").</summary>
    public static string TextOf(string file) => File.ReadAllText(Path.Combine(NodeProcess.RepositoryRoot, file));

    /// <summary>
    /// The commands of the first <c>sh</c> block under <paramref name="heading"/>: continuation lines joined, comments
    /// dropped, each split into words (the README's commands use no quoting).
    /// </summary>
    public static IReadOnlyList<ReadmeCommand> Commands(string heading, string file = "README.md")
    {
        var text = TextOf(file);
        var at = text.IndexOf("\n" + heading + "\n", StringComparison.Ordinal);
        at.Should().BeGreaterThanOrEqualTo(0, $"{file} has a heading '{heading}'");
        var block = ShellBlock().Match(text, at);
        block.Success.Should().BeTrue($"a sh block follows '{heading}'");
        var joined = block.Groups[1].Value.Replace("\\\n", " ", StringComparison.Ordinal);
        return [.. joined.Split('\n').Select(ToCommand).OfType<ReadmeCommand>()];
    }

    /// <summary>The text of the <c>sh</c> block under <paramref name="heading"/> that contains <paramref name="marker"/>, for a shell to run as written.</summary>
    public static string ShellBlock(string heading, string marker, string file = "README.md")
    {
        var text = "\n" + TextOf(file);
        var at = text.IndexOf("\n" + heading + "\n", StringComparison.Ordinal);
        at.Should().BeGreaterThanOrEqualTo(0, $"{file} has a heading '{heading}'");
        var next = text.IndexOf("\n## ", at + heading.Length + 1, StringComparison.Ordinal);
        var section = next < 0 ? text[at..] : text[at..next];
        var block = ShellBlock().Matches(section).Select(match => match.Groups[1].Value).FirstOrDefault(body => body.Contains(marker, StringComparison.Ordinal));
        block.Should().NotBeNull($"a sh block under '{heading}' contains '{marker}'");
        return block!;
    }

    private static ReadmeCommand? ToCommand(string line)
    {
        var comment = CommentStart().Match(line);
        var command = comment.Success ? line[..comment.Index] : line;
        var words = command.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        return words.Length == 0 ? null : new ReadmeCommand(string.Join(' ', words), words, comment.Success ? line[(comment.Index + comment.Length)..].Trim() : "");
    }

    [GeneratedRegex("```sh\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex ShellBlock();

    [GeneratedRegex(@"(^|\s)#\s?")]
    private static partial Regex CommentStart();
}

/// <summary>One command of a README block, and the comment written after it.</summary>
public sealed record ReadmeCommand(string Text, IReadOnlyList<string> Words, string Comment)
{
    public override string ToString() => Text;
}
