//! Header verification.
