pub mod consensus;
pub mod mempool;
