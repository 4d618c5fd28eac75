//! `popsim`: replay RocketMQ POP consumption bugs in a seeded simulation. The commands live
//! in `sim::cli`.

fn main() -> std::process::ExitCode {
    // Die quietly when stdout is a closed pipe (`popsim sweep … | head`), like other
    // Unix tools, instead of panicking on the next print.
    // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    sim::cli::main_with(std::env::args_os())
}

/// Many small allocations per event: mimalloc is faster than the system allocator here and
/// changes nothing a run records (BENCHMARKS.md, "An allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
