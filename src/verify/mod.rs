//! Header verification.
//!
//! [`predicates`] holds each check as a small function with its own error; [`Verifier`]
//! composes them for one header ([`Verifier::verify`]) or a contiguous range
//! ([`Verifier::verify_range`], which batches signatures across headers). Everything is pure:
//! the trusted state and the current time come in, a new trusted state or a typed error
//! comes out. [`SignatureCache`] lets signatures be checked ahead, on other threads.

mod cache;
mod error;
pub mod predicates;
mod signatures;
mod verifier;

pub use cache::{HeaderView, SignatureCache};
pub use error::{RangeError, VerifyError};
pub use signatures::SignatureMode;
pub use verifier::{RangeFailure, TrustedState, Verifier, DEFAULT_MAX_CLOCK_DRIFT_MS};
