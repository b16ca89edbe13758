//! The bridge between Redis streams and the relay: reading the streams, and decoding
//! their entries.

pub mod codec;
pub mod consumer;
pub mod history;
pub mod reader;
pub(crate) mod reply;

pub use cortex_shared::Backoff;
