//! Every type that crosses a wire in Cortex Relay, and its encoding.
//!
//! - [`entry`]: entries of the Redis streams (`cortex:tasks:*`, `cortex:heartbeats`,
//!   `cortex:tasks:dlq`), encoded to and decoded from stream field/value pairs in the
//!   layout of the original plan, so agents written to it interoperate unchanged.
//! - [`frame`]: the JSON frames of the `/ws` WebSocket protocol.
//! - [`lifecycle`]: task states per agent, the lifecycle record, the task and trace API.
//! - [`agent`]: agent names and their validation.
//! - [`backoff`]: the capped exponential backoff between reconnection attempts.
//! - [`entry_id`]: stream entry ids, ordered as Redis orders them.
//! - [`reference`]: the `ref` a client frame may carry, echoed in its reply.
//! - [`rest`]: the bodies of the HTTP API (`/api/v1`).
//! - [`publish`]: the one rule for a task someone publishes, and its error codes.
//! - [`strict`]: JSON decoding that refuses an array where an object belongs.
//! - [`url`]: percent-encoding of URL components.
//!
//! This crate depends on serde (and percent-encoding) and nothing heavier, so the relay (host) and the
//! dashboard (wasm32) share one definition of the protocol.

pub mod agent;
pub mod backoff;
pub mod entry;
pub mod entry_id;
pub mod frame;
pub mod lifecycle;
pub mod publish;
pub mod reference;
pub mod rest;
pub mod strict;
pub mod url;

pub use agent::{AgentName, AgentNameError};
pub use backoff::Backoff;
pub use entry::{
    Attempt, DeadLetter, DecodeError, Heartbeat, JsonObject, Priority, Problem, TaskMessage,
    DLQ_STREAM, HEARTBEAT_STREAM,
};
pub use entry_id::EntryId;
pub use frame::{ClientFrame, ErrorCode, ServerFrame, SubscribeMode, SubscribeTarget, ALL_AGENTS};
pub use reference::{read_ref, Ref, RefError};
