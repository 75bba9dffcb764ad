//! The `headway` command line (native only; see `headway::node::cli`).

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    tune_malloc();
    headway::node::cli::main()
}

/// glibc gives threads that allocate their own malloc arenas (up to 8 per core), and memory
/// freed in one is not returned to the system while a chunk in the same pages is live: with
/// the default arenas (and synced batches written on the node loop) a syncing node's RSS crept
/// up with the chain once the store cache filled; with one arena it stayed flat
/// (BENCHMARKS.md, issue 6). One arena costs no measurable sync throughput (an A/B in the
/// same file), so the node runs with one. An operator's own `MALLOC_ARENA_MAX` wins. A
/// background thread also hands whole free pages back every 10 s (`malloc_trim`).
///
/// Runs first thing in `main`, before any thread exists (mallopt is not meant to race with
/// allocations in other threads).
#[cfg(not(target_arch = "wasm32"))]
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: called before any other thread is started; M_ARENA_MAX only bounds how
            // many arenas glibc creates from now on.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
        let trim = || loop {
            std::thread::sleep(std::time::Duration::from_secs(10));
            // SAFETY: malloc_trim only returns free memory to the system; any thread may call it.
            unsafe {
                libc::malloc_trim(0);
            }
        };
        // Without the thread the node still works; only the trimming is lost.
        let _ = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(trim);
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
