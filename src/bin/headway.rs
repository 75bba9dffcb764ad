//! The `headway` command line (native only; see `headway::node::cli`).

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    headway::node::cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
