//! Micro-benchmarks of the history checker and the history hash on simulated histories of
//! the bench's scaling scenario (one producer, one concurrent group, no faults), at three
//! sizes, so the per-event cost shows whether the checker stays linear in the history.
//! `cargo bench -p sim --bench checker`.

use divan::Bencher;
use reports::history::History;

fn main() {
    divan::main();
}

fn history(messages: u64) -> History {
    let sc = sim::bench::scale_scenario(messages);
    sim::run_seed(&sc, 1, &sim::RunOptions::default()).history
}

/// Every invariant over one history; divan's throughput column is per event.
#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 10)]
fn check(bencher: Bencher, messages: u64) {
    let h = history(messages);
    bencher
        .counter(divan::counter::ItemsCount::new(h.events.len()))
        .bench(|| reports::check(&h, &[]));
}

/// The FNV-1a digest over the history's JSON that determinism checks compare.
#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 10)]
fn hash(bencher: Bencher, messages: u64) {
    let h = history(messages);
    bencher
        .counter(divan::counter::ItemsCount::new(h.events.len()))
        .bench(|| h.hash());
}
