//! Request references (`ref`): any client frame may carry a `"ref"`, a JSON string or
//! number of at most [`MAX_REF_BYTES`] as sent, and the relay echoes it in the frame's
//! reply and in an `error` frame about it, so that a client matches replies to its
//! requests by it instead of by content and order.
//!
//! [`ClientFrame`](crate::ClientFrame) and [`ServerFrame`](crate::ServerFrame) have no
//! such field (they ignore it when decoding), so frames without a ref, the original agents', are
//! decoded and encoded exactly as before: [`read_ref`] reads it from a frame's text
//! (only when the text can hold one, so frames without it cost a scan for `"ref"`),
//! and [`with_ref`] splices it into an encoded frame, after its opening `{`.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::fmt;

/// The longest ref, in bytes of its JSON text (quotes included for a string).
pub const MAX_REF_BYTES: usize = 64;

/// A validated ref: the JSON text of a string or a number, as the client sent it, so
/// that its echo is byte for byte what was sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref(Box<str>);

/// Why a ref was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Not a string or a number (`null`, an object, …), or `ref` given twice.
    #[error("ref must be a JSON string or number, given once")]
    WrongType,
    /// Its JSON text is longer than [`MAX_REF_BYTES`].
    #[error("ref is {0} bytes as JSON; at most {MAX_REF_BYTES} are allowed")]
    TooLong(usize),
}

impl Ref {
    /// The number `n` as a ref.
    pub fn number(n: u64) -> Self {
        Self(n.to_string().into())
    }

    /// The string `text` as a ref; refused when its JSON encoding is too long.
    pub fn text(text: &str) -> Result<Self, RefError> {
        // Encoding a string cannot fail.
        let json = serde_json::to_string(text).expect("strings serialize");
        Self::checked(json.into())
    }

    /// A ref from JSON text: one string or number, nothing around it.
    pub fn from_json(json: &str) -> Result<Self, RefError> {
        let raw: &RawValue = serde_json::from_str(json).map_err(|_| RefError::WrongType)?;
        Self::checked(raw.get().into())
    }

    fn checked(json: Box<str>) -> Result<Self, RefError> {
        match json.as_bytes().first() {
            Some(b'"' | b'-' | b'0'..=b'9') => {}
            _ => return Err(RefError::WrongType),
        }
        if json.len() > MAX_REF_BYTES {
            return Err(RefError::TooLong(json.len()));
        }
        Ok(Self(json))
    }

    /// Its JSON text, e.g. `17` or `"ack-3"`.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The number it is, if it is a whole number (the refs the project's clients send).
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Only the top-level `ref` of a frame; every other field is skipped.
#[derive(Deserialize)]
struct RefField<'a> {
    /// `Some` even for `null` (a wrong type, not an absent ref).
    #[serde(rename = "ref", default, borrow, deserialize_with = "present")]
    reference: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The ref of a frame's JSON text: `Ok(None)` when it has none, or when the text is
/// not a JSON object at all (its decoder says why); an error when `ref` is there but
/// not a valid ref.
pub fn read_ref(text: &str) -> Result<Option<Ref>, RefError> {
    // A key spelt with escapes (`"r\u0065f"`) is still `ref`; such text is rare.
    if !text.contains("\"ref\"") && !text.contains('\\') {
        return Ok(None);
    }
    // serde reads a struct from an array too; only an object has fields.
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    match serde_json::from_str::<RefField<'_>>(text) {
        Ok(RefField { reference: None }) => Ok(None),
        Ok(RefField {
            reference: Some(raw),
        }) => Ref::checked(raw.get().into()).map(Some),
        // `ref` twice; any other error is the text's, for its decoder to report.
        Err(e) if e.is_data() => Err(RefError::WrongType),
        Err(_) => Ok(None),
    }
}

/// `encoded` (a JSON object) with `"ref":…` first, or unchanged without a ref (or if it
/// is not an object).
pub fn with_ref(encoded: String, reference: Option<&Ref>) -> String {
    let Some(reference) = reference else {
        return encoded;
    };
    let Some(rest) = encoded.strip_prefix('{') else {
        return encoded;
    };
    let mut out = String::with_capacity(encoded.len() + reference.0.len() + 8);
    out.push_str("{\"ref\":");
    out.push_str(&reference.0);
    if !rest.trim_start().starts_with('}') {
        out.push(',');
    }
    out.push_str(rest);
    out
}

/// `frame` encoded as JSON, with `reference` spliced in (see [`with_ref`]).
pub fn encode_with_ref<T: serde::Serialize>(frame: &T, reference: Option<&Ref>) -> String {
    // The protocol's frames hold only string map keys: they always serialize.
    with_ref(
        serde_json::to_string(frame).expect("frames serialize"),
        reference,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientFrame, ServerFrame};
    use serde_json::{json, Value};

    #[test]
    fn refs_round_trip_through_frames_both_ways() {
        for reference in [
            Ref::number(0),
            Ref::number(u64::MAX),
            Ref::text("ack-7").unwrap(),
            Ref::text("quote \" and é").unwrap(),
            Ref::from_json("-1.5e3").unwrap(),
        ] {
            let text = encode_with_ref(&ServerFrame::Pong, Some(&reference));
            assert_eq!(text, format!(r#"{{"ref":{reference},"type":"pong"}}"#));
            assert_eq!(read_ref(&text).unwrap().as_ref(), Some(&reference));
            // A client that knows nothing of refs decodes the frame as before.
            assert_eq!(
                serde_json::from_str::<ServerFrame>(&text).unwrap(),
                ServerFrame::Pong
            );
            let ack = ClientFrame::Ack {
                stream: "cortex:tasks:high".into(),
                entry_id: "5-0".into(),
            };
            let text = encode_with_ref(&ack, Some(&reference));
            assert_eq!(read_ref(&text).unwrap(), Some(reference.clone()));
            assert_eq!(crate::strict::from_str::<ClientFrame>(&text).unwrap(), ack);
        }
    }

    #[test]
    fn without_a_ref_frames_are_byte_identical() {
        let frame = ServerFrame::Acked {
            stream: "s".into(),
            entry_id: "1-0".into(),
        };
        assert_eq!(encode_with_ref(&frame, None), frame.to_json());
        assert_eq!(read_ref(&frame.to_json()), Ok(None));
        assert_eq!(with_ref("{}".into(), Some(&Ref::number(1))), r#"{"ref":1}"#);
    }

    #[test]
    fn the_echo_is_the_text_that_was_sent() {
        // Escapes and number spellings are kept, not re-encoded.
        let text = r#"{"type":"ping","ref":"\u0041"}"#;
        let reference = read_ref(text).unwrap().unwrap();
        assert_eq!(reference.as_json(), r#""\u0041""#);
        let echoed = encode_with_ref(&ServerFrame::Pong, Some(&reference));
        let value: Value = serde_json::from_str(&echoed).unwrap();
        assert_eq!(value["ref"], "A");
        assert_eq!(
            read_ref(r#"{"ref":1.50,"type":"ping"}"#)
                .unwrap()
                .unwrap()
                .as_json(),
            "1.50"
        );
        assert_eq!(Ref::number(42).as_u64(), Some(42));
        assert_eq!(Ref::text("42").unwrap().as_u64(), None);
    }

    #[test]
    fn bad_refs_are_refused() {
        let long = "x".repeat(MAX_REF_BYTES - 1);
        for (text, error) in [
            (json!({"type":"ping","ref":null}), RefError::WrongType),
            (json!({"type":"ping","ref":true}), RefError::WrongType),
            (json!({"type":"ping","ref":[1]}), RefError::WrongType),
            (json!({"type":"ping","ref":{"a":1}}), RefError::WrongType),
            (
                json!({"type":"ping","ref":long}),
                RefError::TooLong(MAX_REF_BYTES + 1),
            ),
        ] {
            assert_eq!(read_ref(&text.to_string()), Err(error), "{text}");
        }
        assert_eq!(
            read_ref(r#"{"type":"ping","ref":1,"ref":2}"#),
            Err(RefError::WrongType)
        );
        // The longest allowed: 62 characters and the quotes.
        let longest = "x".repeat(MAX_REF_BYTES - 2);
        assert!(Ref::text(&longest).is_ok());
        assert_eq!(Ref::text(&long), Err(RefError::TooLong(MAX_REF_BYTES + 1)));
        assert_eq!(Ref::from_json("1 2"), Err(RefError::WrongType));
        assert_eq!(Ref::from_json("null"), Err(RefError::WrongType));
    }

    #[test]
    fn text_without_a_top_level_ref_has_none() {
        for text in [
            r#"{"type":"ping"}"#,
            r#"{"type":"publish","payload":{"ref":"inner"}}"#,
            r#"["ref"]"#,
            r#"{"ref":"#,
            "not json \\",
        ] {
            assert_eq!(read_ref(text), Ok(None), "{text}");
        }
        // A key written with escapes is still `ref`.
        assert_eq!(
            read_ref(r#"{"r\u0065f":3,"type":"ping"}"#),
            Ok(Some(Ref::number(3)))
        );
    }
}
