//! The engine: what runs between Redis and the transports. The one watch reader
//! ([`reader`]) and the [`hub`] that fans its entries out to sessions; resume and
//! history frames ([`history`]); presence from heartbeats ([`presence`]); stream
//! trimming ([`trim`]); removing idle consumers ([`reaper`]); where tasks are ([`tasks`], by the rule in [`task_state`]).
//! Consume mode is [`crate::consume`].
//!
//! It reaches Redis through [`crate::store`] and knows nothing of HTTP, WebSocket
//! frames' transport, or the CLI.

pub mod history;
pub mod hub;
pub mod presence;
pub mod reader;
pub mod reaper;
pub(crate) mod task_state;
pub(crate) mod tasks;
pub mod trim;
