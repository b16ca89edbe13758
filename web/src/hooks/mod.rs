//! Hooks, one per file.

mod use_history;
mod use_now;
mod use_poll;
mod use_relay;
mod use_relay_connection;
mod use_route;

pub use use_history::{use_history, History, HISTORY_ROWS};
pub use use_now::use_now;
pub use use_poll::use_poll;
pub use use_relay::use_relay;
pub use use_relay_connection::{use_relay_connection, RelayHandle};
pub use use_route::use_route;
