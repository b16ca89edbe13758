//! The Cortex Relay dashboard: a Yew single-page app on one WebSocket to the relay; and
//! the same connection for other web tools, as a JavaScript module.
//!
//! - [`connection`]: the WebSocket core (reconnection, subscriptions), free of Yew.
//! - `client` (feature `js-client`, on by default): `CortexClient`, the
//!   `#[wasm_bindgen]` layer over that core that the JavaScript module exports (built
//!   with wasm-bindgen `--target web`). The dashboard binary is built without it.
//! - [`state`]: the dashboard's state and its reducer.
//! - [`hooks`]: `use_relay_connection` owns the connection; `use_relay` reaches it.
//! - [`components`]: the page, one component per file.
//! - [`live`]: task states and agent outcomes from `lifecycle` frames, bounded.
//! - [`format`]: times, durations and JSON for humans.

pub mod app;
#[cfg(feature = "js-client")]
pub mod client;
pub mod components;
pub mod connection;
pub mod format;
pub mod hooks;
pub mod live;
pub mod route;
pub mod services;
pub mod state;

pub use app::App;
