using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using EtcdSecure.Engine.State;

namespace EtcdSecure.Engine.Members;

/// <summary>The clusters New-EtcdCluster made, as the state store keeps them for every session of the user.</summary>
public static class ClusterHost
{
    public static IReadOnlyList<ClusterRecord> All => StateStore.Current.List<ClusterRecord>(ClusterRecord.Kind).OrderBy(c => c.Created).ToList();

    public static ClusterRecord? Find(string name) => StateStore.Current.Get<ClusterRecord>(ClusterRecord.Kind, name);

    public static void Record(ClusterRecord cluster) => StateStore.Current.Put(ClusterRecord.Kind, cluster.Name, cluster);

    /// <summary>The members of the cluster that are still recorded (running or exited), in its order.</summary>
    public static IReadOnlyList<RunningMember> MembersOf(ClusterRecord cluster) =>
        cluster.Members.Select(s => MemberHost.Find(s.Name)).Where(m => m is not null && m.Spec.DataDir == SpecOf(cluster, m.Spec.Name)?.DataDir).ToList()!;

    /// <summary>
    /// The leader's name as the running members report it, asked with the cluster's own client certificate within
    /// <paramref name="timeout"/>; null when no member runs, none answers in time, they do not agree, or the cluster's
    /// client certificate is no longer where it was recorded.
    /// </summary>
    public static async Task<string?> LeaderAsync(ClusterRecord cluster, TimeSpan timeout, CancellationToken cancel)
    {
        var running = MembersOf(cluster).Where(m => !m.HasExited).Select(m => m.Spec.AdvertiseClientUrls[0]).ToList();
        if (running.Count == 0) return null;
        TlsClientIdentity identity;
        try
        {
            identity = TlsClientIdentity.Load(cluster.CAPath, cluster.ClientCertificatePath, cluster.ClientKeyPath);
        }
        catch (EtcdSecureException)
        {
            // Its files were moved or deleted: a listing still lists it, without a leader.
            return null;
        }

        var rows = await Health.ClusterHealth.CheckAsync(new Health.HealthQuery { Endpoints = running, Identity = identity, Timeout = timeout }, cancel).ConfigureAwait(false);
        return Health.ClusterVerdict.Of(rows).Leader;
    }

    /// <summary>Stops every member at once (SIGTERM, then a kill after <paramref name="grace"/>); data and certificates stay.</summary>
    public static Task StopAsync(ClusterRecord cluster, TimeSpan grace, CancellationToken cancel) =>
        Task.WhenAll(MembersOf(cluster).Select(m => MemberHost.StopAsync(m, grace, cancel)));

    /// <summary>
    /// Stops the cluster and deletes what it is made of: its tls/, logs/ and data/ folders, then its folder if nothing
    /// else is left there. Anything else in the folder was not made by the module and stays. The record is taken out
    /// of the store first, under its lock, so of two sessions removing the same cluster one does the work and the
    /// other finds nothing (false).
    /// </summary>
    public static async Task<bool> RemoveAsync(string name, TimeSpan grace, CancellationToken cancel)
    {
        if (StateStore.Current.Take<ClusterRecord>(ClusterRecord.Kind, name) is not { } cluster) return false;
        await StopAsync(cluster, grace, cancel).ConfigureAwait(false);
        foreach (string owned in ClusterPlan.Owned)
        {
            string dir = Path.Combine(cluster.Path, owned);
            if (Directory.Exists(dir) && !File.GetAttributes(dir).HasFlag(FileAttributes.ReparsePoint)) Directory.Delete(dir, recursive: true);
        }

        if (Directory.Exists(cluster.Path) && !Directory.EnumerateFileSystemEntries(cluster.Path).Any()) Directory.Delete(cluster.Path);
        return true;
    }

    private static MemberSpec? SpecOf(ClusterRecord cluster, string name) => cluster.Members.FirstOrDefault(s => s.Name == name);
}
