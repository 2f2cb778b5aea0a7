using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.Members;
using EtcdSecure.Engine.State;

namespace EtcdSecure.Engine.Relay;

/// <summary>
/// Proxies that run in a process of their own and outlive the session that started them: a PowerShell host running
/// the same relay (Start-EtcdProxy -Wait), recorded in the state store, reached through its control socket.
/// </summary>
public static class ProxyHost
{
    public static IReadOnlyList<ProxyRecord> All => StateStore.Current.List<ProxyRecord>(ProxyRecord.Kind).OrderBy(r => r.StartTime).ToList();

    public static ProxyRecord? Find(string name) => StateStore.Current.Get<ProxyRecord>(ProxyRecord.Kind, name);

    public static bool IsRunning(ProxyRecord r) => ProcessIdentity.IsRunning(r.ProcessId, r.ProcessStart);

    private static string FileOf(string name, string extension) => Path.Combine(StateStore.Current.Root, ProxyRecord.Kind, name + extension);

    /// <summary>
    /// The runtime settings of a proxy that runs in a process of its own (-Detached, or a systemd unit): every method
    /// is compiled once, fully optimized, when first called, instead of starting from precompiled or quickly compiled
    /// code and being recompiled as it gets hot. Measured (docs/benchmarks.md, a cold proxy under Range load): relay
    /// CPU per request is near its steady state from the first second of load instead of after 10 to 25 seconds, and
    /// that steady state is no higher; the price is about 4 s more before the proxy listens, and 7 to 10 s more CPU,
    /// as pwsh's own start-up is compiled that way too. A proxy hosted as a job in a session runs with that session's
    /// settings.
    /// </summary>
    public static readonly IReadOnlyList<(string Name, string Value)> ServiceRuntime = new[]
    {
        ("DOTNET_TieredCompilation", "0"),
        ("DOTNET_ReadyToRun", "0"),
    };

    /// <summary>
    /// Starts <paramref name="options"/> in a detached PowerShell process and returns once its control socket answers.
    /// <paramref name="pwsh"/> is how to start PowerShell again (a path, then its first arguments).
    /// </summary>
    public static async Task<ProxyRecord> StartDetachedAsync(ProxyOptions options, IReadOnlyList<string> pwsh, string manifest, TimeSpan timeout, CancellationToken cancel)
    {
        if (Find(options.Name) is { } known && IsRunning(known))
        {
            throw new EtcdSecureException("ProxyAlreadyRunning", ErrorKind.ResourceExists, $"A detached proxy named '{options.Name}' is running as process {known.ProcessId}; stop it first or pick another -Name.", options.Name);
        }

        string optionsFile = FileOf(options.Name, ".options.json");
        string log = FileOf(options.Name, ".log");
        StateStore.Current.WithLock(() =>
        {
            StateStore.WriteJson(optionsFile, options);
            return true;
        });
        string script = HostScript(manifest, optionsFile, detached: true);
        var env = new Dictionary<string, string>
        {
            [StateStore.Variable] = StateStore.Current.Root,
            // A long-running service has no business sending usage telemetry off the machine.
            ["POWERSHELL_TELEMETRY_OPTOUT"] = "1",
        };
        // The runtime settings of a proxy process, unless the user chose otherwise in the environment it inherits.
        foreach (var (k, v) in ServiceRuntime)
        {
            if (Environment.GetEnvironmentVariable(k) is null) env[k] = v;
        }

        // A start that fails takes its options file back; the log stays, as it says why, and the next start of this
        // name appends to it.
        Process? process = null;
        try
        {
            process = DetachedProcess.Start(pwsh[0], pwsh.Skip(1).Concat(new[] { "-NoProfile", "-NonInteractive", "-Command", script }), log, options.Name, env);
            var waited = Stopwatch.StartNew();
            while (waited.Elapsed < timeout)
            {
                cancel.ThrowIfCancellationRequested();
                if (Find(options.Name) is { } r && r.ProcessId == process.Id && await ControlClient.StatsAsync(r.ControlSocket, TimeSpan.FromSeconds(2), cancel).ConfigureAwait(false) is not null)
                {
                    return r;
                }

                if (process.HasExited)
                {
                    throw new EtcdSecureException("ProxyStartFailed", ErrorKind.InvalidOperation,
                        $"The detached proxy '{options.Name}' exited with code {process.ExitCode} while starting; nothing of it is left but its log, {log}, whose last lines are:{Environment.NewLine}{string.Join(Environment.NewLine, MemberHost.Tail(log, 15))}", options.Name);
                }

                await Task.Delay(100, cancel).ConfigureAwait(false);
            }

            throw new EtcdSecureException("ProxyStartTimeout", ErrorKind.OperationTimeout,
                $"The detached proxy '{options.Name}' did not answer on its control socket within {timeout.TotalSeconds:0} s; it was stopped, and nothing of it is left but its log, {log}.", options.Name);
        }
        catch
        {
            // Timed out, failed or cancelled (Ctrl+C): no process, record or options file of this start outlives it.
            if (process is { HasExited: false }) process.Kill(entireProcessTree: true);
            StateStore.Current.WithLock(() =>
            {
                if (process is not null && Find(options.Name) is { } r && r.ProcessId == process.Id) StateStore.Current.RemoveLocked(ProxyRecord.Kind, options.Name);
                File.Delete(optionsFile);
                return true;
            });
            throw;
        }
        finally
        {
            process?.Dispose();
        }
    }

    /// <summary>Reads the options a detached proxy was started with.</summary>
    public static ProxyOptions LoadOptions(string path) => JsonSerializer.Deserialize<ProxyOptions>(File.ReadAllText(path))
        ?? throw new EtcdSecureException("InvalidOptionsFile", ErrorKind.InvalidData, $"'{path}' holds no proxy options.", path);

    /// <summary>Called by the detached process itself once it serves: its record, with its control socket.</summary>
    public static ProxyRecord Register(ProxyOptions options, string controlSocket)
    {
        var record = new ProxyRecord
        {
            Name = options.Name,
            ProcessId = Environment.ProcessId,
            ProcessStart = ProcessIdentity.StartToken(Environment.ProcessId),
            Endpoint = options.Listen.GetLeftPart(UriPartial.Authority),
            ControlSocket = controlSocket,
            LogPath = FileOf(options.Name, ".log"),
            StartTime = DateTime.Now,
        };
        StateStore.Current.Put(ProxyRecord.Kind, options.Name, record);
        return record;
    }

    /// <summary>The options a detached proxy runs with.</summary>
    public static string OptionsFileOf(string name) => FileOf(name, ".options.json");

    /// <summary>The path of a detached proxy's control socket; its folder is made (inside the 0700 store) when missing.</summary>
    public static string ControlSocketOf(string name)
    {
        string path = FileOf(name, ".sock");
        StateStore.Current.EnsureRoot();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }

    /// <summary>Called by the detached process as it ends: its record goes, unless another process owns the name by now.</summary>
    public static void Unregister(string name) => StateStore.Current.WithLock(() =>
    {
        if (Find(name) is { } r && r.ProcessId == Environment.ProcessId)
        {
            StateStore.Current.RemoveLocked(ProxyRecord.Kind, name);
            File.Delete(FileOf(name, ".options.json"));
        }

        return true;
    });

    /// <summary>
    /// Stops a detached proxy from any session: asks over the control socket, then SIGTERM, then a kill after
    /// <paramref name="grace"/>, each only while the PID is still the proxy's; then its record goes.
    /// </summary>
    public static async Task StopAsync(ProxyRecord r, TimeSpan grace, CancellationToken cancel)
    {
        if (IsRunning(r))
        {
            await ControlClient.StopAsync(r.ControlSocket, TimeSpan.FromSeconds(2), cancel).ConfigureAwait(false);
            using var graceful = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            graceful.CancelAfter(grace);
            try
            {
                await ProcessIdentity.WaitForExitAsync(r.ProcessId, r.ProcessStart, graceful.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
            {
                // Did not stop in time: the kill below.
            }

            ProcessIdentity.Kill(r.ProcessId, r.ProcessStart);
        }

        StateStore.Current.WithLock(() =>
        {
            if (Find(r.Name) is { } now && now.ProcessId == r.ProcessId) StateStore.Current.RemoveLocked(ProxyRecord.Kind, r.Name);
            return true;
        });
        File.Delete(FileOf(r.Name, ".options.json"));
        File.Delete(r.ControlSocket);
    }

    /// <summary>
    /// The PowerShell that hosts a proxy from an options file: a detached proxy (-Detached: its control socket and
    /// record), or a service (-Wait), as Export-EtcdServiceUnit writes it.
    /// </summary>
    public static string HostScript(string manifest, string optionsFile, bool detached) =>
        $"Import-Module {Quote(manifest)}; Start-EtcdProxy {(detached ? "-Detached" : "-Wait")} -OptionsFile {Quote(optionsFile)} -InformationAction Continue";

    private static string Quote(string s) => "'" + s.Replace("'", "''") + "'";
}
