//! What the end-to-end benches share (`mod support;` in each).

use std::str::FromStr;

/// A bench setting from the environment: `default` when unset or unparsable.
pub fn env<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
