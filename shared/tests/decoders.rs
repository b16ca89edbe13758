//! Property tests of the JSON decoders at the boundary: WebSocket client frames and the
//! REST bodies, as [`cortex_shared::strict`] decodes them.
//!
//! For any input: no panic; what is taken re-encodes to JSON that decodes to the same
//! value; what is taken is exactly what serde alone would take (the strict check only
//! refuses, it never changes a value); and an input with an array where the type has
//! an object, at the top or nested, is refused.

use cortex_shared::rest::{BulkRequest, DlqFilter, PublishRequest, RetryRequest};
use cortex_shared::strict::{self, StrictError};
use cortex_shared::ClientFrame;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt::Debug;

/// Names and words the decoders know, so that generated input is often valid.
const WORDS: &[&str] = &[
    "type",
    "agent",
    "mode",
    "consumer",
    "resume",
    "history",
    "subscribe",
    "unsubscribe",
    "ping",
    "auth",
    "token",
    "heartbeat",
    "status",
    "publish",
    "to",
    "from",
    "priority",
    "task_type",
    "payload",
    "ack",
    "nack",
    "stream",
    "entry_id",
    "error",
    "watch",
    "consume",
    "high",
    "low",
    "critical",
    "normal",
    "pink",
    "*",
    "filter",
    "ids",
    "since_ms",
    "until_ms",
    "cortex:tasks:high",
    "1704556800000-0",
    "coding",
    "",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Any JSON value, leaning on the words above.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..1u64 << 60).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((word(), inner), 0..7)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The checks every decoder must pass for `input`.
fn decodes_honestly<T>(input: &Value) -> Result<(), TestCaseError>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let text = serde_json::to_vec(input).unwrap();
    let strict = strict::from_slice::<T>(&text);
    let plain = serde_json::from_slice::<T>(&text);
    match strict {
        Ok(value) => {
            // Taken: as serde takes it, and it survives a round trip.
            prop_assert_eq!(plain.as_ref().ok(), Some(&value));
            let again = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(strict::from_slice::<T>(&again).ok(), Some(value));
            prop_assert!(input.is_object(), "taken from a non-object: {}", input);
        }
        Err(StrictError::Json(_)) => prop_assert!(plain.is_err()),
        Err(StrictError::NotAnObject { .. }) => {
            // Refused only what serde alone would have read from an array.
            prop_assert!(plain.is_ok());
            prop_assert!(contains_array(input));
        }
    }
    Ok(())
}

fn contains_array(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Object(fields) => fields.values().any(contains_array),
        _ => false,
    }
}

/// `value` with its top-level object turned into an array of its values, in order.
fn arrayed(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Array(fields.values().cloned().collect()),
        other => other.clone(),
    }
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    let name = "[A-Za-z0-9_.-]{1,12}";
    prop_oneof![
        name.prop_map(ClientFrame::watch),
        (name, proptest::option::of(name))
            .prop_map(|(agent, consumer)| ClientFrame::consume(agent, consumer)),
        Just(ClientFrame::Ping),
        (name, any::<u8>()).prop_map(|(agent, n)| ClientFrame::Heartbeat {
            agent,
            status: json!({"n": n, "list": [n]}).as_object().unwrap().clone(),
        }),
        (name, "[a-z]{1,8}", proptest::option::of("[a-z0-9-]{1,12}")).prop_map(
            |(to, task_type, trace)| ClientFrame::Publish {
                to,
                from: None,
                priority: cortex_shared::Priority::High,
                task_type,
                payload: json!({"a": [1, {"b": 2}]}).as_object().unwrap().clone(),
                parent_id: trace.clone(),
                correlation_id: trace,
            }
        ),
        ("[0-9]{1,13}-[0-9]{1,3}").prop_map(|entry_id| ClientFrame::Ack {
            stream: "cortex:tasks:low".into(),
            entry_id,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn client_frames_decode_honestly(input in json_value()) {
        decodes_honestly::<ClientFrame>(&input)?;
    }

    #[test]
    fn rest_bodies_decode_honestly(input in json_value()) {
        decodes_honestly::<BulkRequest>(&input)?;
        decodes_honestly::<RetryRequest>(&input)?;
        decodes_honestly::<PublishRequest>(&input)?;
        decodes_honestly::<DlqFilter>(&input)?;
    }

    #[test]
    fn any_bytes_are_taken_or_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = strict::from_slice::<ClientFrame>(&bytes);
        let _ = strict::from_slice::<BulkRequest>(&bytes);
        let _ = strict::from_slice::<PublishRequest>(&bytes);
    }

    #[test]
    fn every_client_frame_round_trips_and_its_array_form_is_refused(frame in client_frame()) {
        let value = serde_json::to_value(&frame).unwrap();
        prop_assert_eq!(strict::from_value::<ClientFrame>(value.clone()).unwrap(), frame);
        prop_assert!(strict::from_value::<ClientFrame>(arrayed(&value)).is_err());
    }

    #[test]
    fn a_bulk_filter_sent_as_an_array_is_refused(filter in proptest::collection::vec(json_value(), 0..8)) {
        let body = json!({ "filter": filter });
        prop_assert!(strict::from_value::<BulkRequest>(body).is_err());
    }
}
