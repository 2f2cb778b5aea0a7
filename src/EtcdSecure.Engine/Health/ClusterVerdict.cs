using System.Collections.Generic;
using System.Linq;

namespace EtcdSecure.Engine.Health;

/// <summary>What a set of endpoint checks says about the cluster: healthy means a quorum answers and agrees on one leader.</summary>
public sealed record ClusterVerdict(bool Healthy, int Members, int HealthyMembers, int Quorum, string? Leader, ulong? RaftTerm, IReadOnlyList<string> Problems)
{
    public static ClusterVerdict Of(IReadOnlyList<EndpointHealth> rows)
    {
        int quorum = rows.Count / 2 + 1;
        var healthy = rows.Where(r => r.Healthy).ToList();
        var leaders = healthy.Select(r => r.Leader).Where(l => l is > 0).Distinct().ToList();
        var problems = rows.Where(r => !r.Healthy).Select(r => $"{r.Name ?? r.Endpoint}: {r.Error}").ToList();
        if (leaders.Count > 1) problems.Add("members disagree on the leader: " + string.Join(", ", leaders.Select(l => ClusterMember.FormatId(l!.Value))));
        if (healthy.Count > 0 && leaders.Count == 0) problems.Add("no leader");
        string? leader = leaders.Count == 1 ? rows.FirstOrDefault(r => r.MemberId == leaders[0])?.Name ?? ClusterMember.FormatId(leaders[0]!.Value) : null;
        return new ClusterVerdict(rows.Count > 0 && healthy.Count >= quorum && leaders.Count == 1, rows.Count, healthy.Count, quorum, leader, healthy.Max(r => r.RaftTerm), problems);
    }
}
