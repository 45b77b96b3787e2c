using System.Diagnostics;
using System.Globalization;

namespace OAuthBroker.Demo;

/// <summary>
/// The demo's temporary folders. Each holds a mark naming the process that made it (its id and start time, since ids
/// are reused), so a demo that was killed before it could delete its folder has it swept by the next demo, and no
/// folder another running demo uses, or that the broker did not make, is ever touched.
/// </summary>
public static class DemoFolders
{
    public const string Prefix = "oauthbroker-demo-";
    public const string OwnerMark = "owner";

    public static string Create()
    {
        var folder = Directory.CreateTempSubdirectory(Prefix).FullName;
        File.WriteAllText(Path.Combine(folder, OwnerMark), Mark(Environment.ProcessId) ?? "");
        return folder;
    }

    /// <summary>Deletes the marked demo folders under <paramref name="root"/> whose process is gone; returns them.</summary>
    public static IReadOnlyList<string> SweepStale(string root)
    {
        var swept = new List<string>();
        foreach (var folder in Directory.EnumerateDirectories(root, Prefix + "*"))
        {
            var mark = Path.Combine(folder, OwnerMark);
            string recorded;
            try
            {
                recorded = File.ReadAllText(mark);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                continue; // No mark (not ours, or being made right now), or another user's: left alone.
            }

            var parts = recorded.Split(' ');
            if (parts.Length != 2
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var processId)
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var startTicks)
                || IsRunning(processId, startTicks))
            {
                continue;
            }

            try
            {
                Directory.Delete(folder, recursive: true);
                swept.Add(folder);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                // Someone else's to clean: the system's temporary folder is cleared in time anyway.
            }
        }

        return swept;
    }

    /// <summary>"id start-ticks" of a running process, or null when there is none with that id.</summary>
    private static string? Mark(int processId) =>
        StartTicks(processId) is { } ticks ? string.Create(CultureInfo.InvariantCulture, $"{processId} {ticks}") : null;

    /// <summary>
    /// Whether the process that made the mark still runs: same id, and a start time within a second of the recorded
    /// one. The runtime derives a start time from the boot time, which it computes anew in each process, so two
    /// readings differ by milliseconds; a reused id belongs to a process started later by far more.
    /// </summary>
    private static bool IsRunning(int processId, long recordedStartTicks) =>
        StartTicks(processId) is { } ticks && Math.Abs(ticks - recordedStartTicks) < TimeSpan.TicksPerSecond;

    private static long? StartTicks(int processId)
    {
        try
        {
            using var process = Process.GetProcessById(processId);
            return process.StartTime.ToUniversalTime().Ticks;
        }
        catch (Exception exception) when (exception is ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }
}
