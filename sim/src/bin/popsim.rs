//! `popsim`: replay RocketMQ POP consumption bugs in a seeded simulation.

fn main() {
    println!("popsim: under construction");
}
