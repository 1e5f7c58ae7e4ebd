//! Cost of one `pick` with 10,000 pieces and 200 connected peers, each holding a
//! random half of the image, for each strategy; plus the cost of one `have`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand::RngExt;
use swarmhub_core::metainfo::Geometry;
use swarmhub_core::picker::{PickStrategy, Picker, PickerConfig};
use swarmhub_core::pieceset::PieceSet;
use swarmhub_core::rng::from_seed;
use swarmhub_core::ConnId;

const PIECES: u32 = 10_000;
const PEERS: usize = 200;

fn setup(strategy: PickStrategy) -> (Picker, Vec<PieceSet>) {
    let mut rng = from_seed(1);
    let geometry = Geometry::new(u64::from(PIECES) * 256 * 1024, 256 * 1024);
    let config = PickerConfig {
        strategy,
        random_first_pieces: 0,
        ..PickerConfig::default()
    };
    // We already have a tenth of the image, so rarest-first is past its start.
    let mut have = PieceSet::new(PIECES);
    for p in (0..PIECES).step_by(10) {
        have.insert(p);
    }
    let mut picker = Picker::new(config, geometry, have);
    let peers: Vec<PieceSet> = (0..PEERS)
        .map(|_| {
            let mut s = PieceSet::new(PIECES);
            for p in 0..PIECES {
                if rng.random_bool(0.5) {
                    s.insert(p);
                }
            }
            s
        })
        .collect();
    for s in &peers {
        picker.add_peer(s);
    }
    (picker, peers)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pick_10000_pieces_200_peers");
    for (name, strategy) in [
        ("rarest_first", PickStrategy::RarestFirst),
        ("random", PickStrategy::Random),
        ("sequential", PickStrategy::Sequential),
    ] {
        let (picker, peers) = setup(strategy);
        let mut rng = from_seed(2);
        let mut i = 0usize;
        // One call that starts a new piece and requests its 16 blocks.
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || picker.clone(),
                |p| {
                    i = (i + 1) % PEERS;
                    let mut out = Vec::with_capacity(16);
                    p.pick(ConnId(i as u64), &peers[i], 16, false, &mut rng, &mut out);
                    out
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let (mut picker, _) = setup(PickStrategy::RarestFirst);
    let mut piece = 0u32;
    c.bench_function("peer_has_10000_pieces", |b| {
        b.iter(|| {
            piece = (piece + 7919) % PIECES;
            picker.peer_has(piece);
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
