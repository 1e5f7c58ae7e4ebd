//! Sites and the links between them, held as a petgraph graph. Routes between
//! sites follow the lowest-latency path (Dijkstra); each link is a shared
//! resource of the bandwidth model in each direction, and its latency adds to
//! the base latency of the hosts' own network.

use petgraph::algo::dijkstra;
use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use swarmhub_core::Duration;

use crate::net::Net;
use crate::scenario::Scenario;

/// The network of a scenario, ready for the engine.
pub struct Topology {
    /// Bandwidth model with the links and routes installed (hosts not yet added).
    pub net: Net,
    /// One-way latency between sites.
    pub latency: Vec<Vec<Duration>>,
    names: Vec<String>,
}

impl Topology {
    /// Build from the scenario's `[network]` section.
    pub fn build(scenario: &Scenario) -> Topology {
        let base = scenario.network.latency.0;
        let names: Vec<String> = scenario
            .network
            .sites
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let n = names.len().max(1);
        let mut net = Net::new(n);
        let mut graph: UnGraph<usize, (Duration, usize, usize)> = UnGraph::new_undirected();
        let nodes: Vec<NodeIndex> = (0..n).map(|i| graph.add_node(i)).collect();
        let index = |name: &str| names.iter().position(|s| s == name).unwrap_or(0);
        for link in &scenario.network.links {
            let (a, b) = (index(&link.from), index(&link.to));
            let cap = link.capacity.bytes_per_s() * scenario.network.payload_efficiency;
            // One link resource per direction.
            let ab = net.add_link(cap);
            let ba = net.add_link(cap);
            let (lo, hi) = if a <= b { (ab, ba) } else { (ba, ab) };
            graph.add_edge(nodes[a], nodes[b], (link.latency.0, lo, hi));
        }
        let mut latency = vec![vec![base; n]; n];
        for a in 0..n {
            let scores = dijkstra(&graph, nodes[a], None, |e| e.weight().0.as_micros());
            let dist: Vec<Option<u64>> = nodes.iter().map(|n| scores.get(n).copied()).collect();
            for b in 0..n {
                if a == b {
                    continue;
                }
                let Some(d) = dist[b] else {
                    continue; // unreachable sites keep the base latency and no link
                };
                latency[a][b] = base + Duration::from_micros(d);
                net.set_path(a, b, route(&graph, &nodes, &dist, a, b));
            }
        }
        Topology {
            net,
            latency,
            names,
        }
    }

    /// Index of a site name (0 for none or a flat network).
    pub fn site_of(&self, name: Option<&str>) -> usize {
        name.and_then(|n| self.names.iter().position(|s| s == n))
            .unwrap_or(0)
    }
}

/// Links along the shortest path from `a` to `b`, walking back from `b`
/// through predecessors whose distance plus the edge equals the distance.
fn route(
    graph: &UnGraph<usize, (Duration, usize, usize)>,
    nodes: &[NodeIndex],
    dist: &[Option<u64>],
    a: usize,
    b: usize,
) -> Vec<usize> {
    let mut links = Vec::new();
    let mut at = nodes[b];
    // At most one step per site, even with zero-latency links.
    for _ in 0..nodes.len() {
        if at == nodes[a] {
            break;
        }
        let Some(d_at) = dist[at.index()] else { break };
        let step = graph.edges(at).find_map(|e| {
            let other = if e.source() == at {
                e.target()
            } else {
                e.source()
            };
            let d_other = dist[other.index()]?;
            (other != at && d_other + e.weight().0.as_micros() == d_at).then_some((other, e))
        });
        let Some((prev, e)) = step else { break };
        let (_, lo, hi) = *e.weight();
        // Direction prev -> at: `lo` carries traffic from the lower site index.
        links.push(if graph[prev] <= graph[at] { lo } else { hi });
        at = prev;
    }
    links.reverse();
    links
}
