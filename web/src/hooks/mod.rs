//! Hooks, one per file.

mod use_relay;
mod use_relay_connection;

pub use use_relay::use_relay;
pub use use_relay_connection::{use_relay_connection, RelayHandle};
