//! `popsim`: replay RocketMQ POP consumption bugs in a seeded simulation. The commands live
//! in `sim::cli`.

fn main() -> std::process::ExitCode {
    sim::cli::main_with(std::env::args_os())
}
