//! The light client as users run it, on both targets: the sans-I/O [`crate::light`] machine
//! driven over the libp2p [`crate::net::Network`], with a [`HeaderStore`] and the platform's
//! timers ([`crate::platform`]).
//!
//! - [`driver`]: [`Driver`] (the loop) and [`ClientHandle`] (status, queries, stop from
//!   another task), [`ClientStatus`] and [`ClientEvent`] as users see them.
//! - [`store`]: the async [`HeaderStore`] the driver writes to; every synchronous
//!   [`LightStore`](crate::light::LightStore) is one.
//! - [`error`]: [`ClientError`] with a stable [`ErrorCode`].

pub mod driver;
pub mod error;
#[cfg(target_arch = "wasm32")]
pub mod indexeddb;
pub mod store;

pub use driver::{
    ClientConfig, ClientEvent, ClientHandle, ClientStatus, Driver, EventVerification, ForkAlarm,
    ForkSide, HeaderView,
};
pub use error::{ClientError, ErrorCode};
#[cfg(target_arch = "wasm32")]
pub use indexeddb::{IdbStore, IdbStoreError};
pub use store::{open_client, HeaderStore, StoreFailure};
