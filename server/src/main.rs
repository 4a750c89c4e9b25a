//! The `herald` binary: everything it does is `server::cli` (see there why it is not here).

/// mimalloc rather than the system allocator: the delivery path allocates and frees many small
/// buffers across threads (requests, headers, rows), where glibc's malloc, free and
/// consolidation took about 7% of the server's CPU (README, "Where the time goes"). Measured:
/// 8-20% more deliveries per second, 10% less server CPU per event (see the README's benchmarks).
/// With the crate's `override` feature, C code linked into the binary (the bundled SQLite) calls
/// mimalloc through `malloc` and `free` as well.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    server::cli::main()
}
