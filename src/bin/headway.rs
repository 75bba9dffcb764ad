//! The `headway` command line (native only; see `headway::node::cli`).

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    trim_malloc_periodically();
    headway::node::cli::main()
}

/// glibc gives threads that allocate their own malloc arenas (up to 8 per core), and memory
/// freed in them is not returned to the system while a chunk in the same pages is live: a
/// syncing node's RSS crept up by about 11 MiB per 100,000 blocks after the store cache filled
/// (BENCHMARKS.md, issue 6). One arena (`MALLOC_ARENA_MAX=1`) keeps it flat; two did not help,
/// and what fewer arenas cost in throughput is not measured cleanly yet. So the arenas stay,
/// and a background thread hands whole free pages back every 10 s (`malloc_trim`, all arenas
/// since glibc 2.8), which halves the creep.
#[cfg(not(target_arch = "wasm32"))]
fn trim_malloc_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
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
