//! The `headway` command line.

fn main() {
    println!("headway {}", env!("CARGO_PKG_VERSION"));
}
