//! Every client kind and every fault at once, over several seeds: the world never panics
//! and every seed replays to the same history.

mod common;

use sim::{sweep, RunOptions};

#[test]
fn the_world_survives_chaos_and_replays_it_exactly() {
    let sc = common::scenario(include_str!("data/chaos.toml"));
    let seeds: Vec<u64> = (0..16).collect();
    for s in sweep(&sc, &seeds, &RunOptions::default(), 2, true) {
        assert!(s.panic.is_none(), "seed {}: {:?}", s.seed, s.panic);
        assert_eq!(s.nondeterministic, None, "seed {} diverged", s.seed);
    }
}
