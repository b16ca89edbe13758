//! JSON decoding that takes an object only where an object was sent.
//!
//! serde's derived `Deserialize` reads a struct, and an internally tagged enum, from a
//! JSON array as well as from an object, taking the array's items as the fields in
//! order: `{"filter":[]}` would be a filter with every field absent (the whole DLQ),
//! and `["pink","high","coding"]` a publish request. Every decoder at the boundary
//! (REST bodies, WebSocket client frames, the config file) goes through
//! [`from_slice`] or [`from_value`] instead, which refuse that.
//!
//! How: the decoded value is encoded again; wherever its encoding has an object, the
//! input must have had an object at the same place. Types whose encoding is an object
//! are exactly the ones that must be sent as one, so this needs no list of them, and
//! it covers nested structs and enum variants that serde decodes through its private
//! buffers, where a wrapping `Deserializer` would not reach. Input without a `[` byte
//! holds no array, so it takes the plain decoder's path at no extra cost.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// Why [`from_slice`] or [`from_value`] refused an input.
#[derive(Debug, thiserror::Error)]
pub enum StrictError {
    /// Not JSON, or not the expected type (serde's message).
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// An array (or another non-object) where an object belongs.
    #[error("expected a JSON object at {path}, found {found}")]
    NotAnObject {
        /// Where, as a JSON pointer-like path (`the top level`, `filter`, `resume.x`).
        path: Path,
        /// What was there: `an array`, `a string`, ….
        found: &'static str,
    },
}

/// The place in a document where [`StrictError::NotAnObject`] found a non-object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<String>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the top level");
        }
        write!(f, "`{}`", self.0.join("."))
    }
}

/// Decodes JSON text into `T`, refusing an array (or any non-object) where `T`'s
/// encoding has an object.
pub fn from_slice<T: DeserializeOwned + Serialize>(input: &[u8]) -> Result<T, StrictError> {
    if !input.contains(&b'[') {
        // No array anywhere, so nothing was read as an object that was not one.
        return Ok(serde_json::from_slice(input)?);
    }
    from_value(serde_json::from_slice(input)?)
}

/// [`from_slice`] for text.
pub fn from_str<T: DeserializeOwned + Serialize>(input: &str) -> Result<T, StrictError> {
    from_slice(input.as_bytes())
}

/// Decodes a JSON value into `T` with the same check as [`from_slice`] (for input
/// that arrives as a value, such as a YAML file read into one).
pub fn from_value<T: DeserializeOwned + Serialize>(input: Value) -> Result<T, StrictError> {
    let decoded = T::deserialize(&input)?;
    check_shape(&decoded, &input)?;
    Ok(decoded)
}

/// The check of [`from_slice`] alone, for a value another decoder made from `input`
/// (the config file keeps its YAML decoder's messages, which name line and column).
pub fn check_shape<T: Serialize>(decoded: &T, input: &Value) -> Result<(), StrictError> {
    let encoded = serde_json::to_value(decoded)?;
    let mut path = Vec::new();
    check(&encoded, input, &mut path).map_err(|found| StrictError::NotAnObject {
        path: Path(path),
        found,
    })
}

/// Checks that `input` has an object wherever `shape` (the decoded value, encoded
/// again) has one; on failure `path` is where, and the error names what was there.
fn check(shape: &Value, input: &Value, path: &mut Vec<String>) -> Result<(), &'static str> {
    match (shape, input) {
        (Value::Object(fields), Value::Object(given)) => {
            for (name, field) in fields {
                // A field the input left out took its default; one under another name
                // (an alias) is not followed.
                if let Some(given) = given.get(name) {
                    path.push(name.clone());
                    check(field, given, path)?;
                    path.pop();
                }
            }
            Ok(())
        }
        (Value::Object(_), other) => Err(kind(other)),
        (Value::Array(items), Value::Array(given)) => {
            for (i, (item, given)) in items.iter().zip(given).enumerate() {
                path.push(i.to_string());
                check(item, given, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        #[serde(default)]
        agent: Option<String>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Outer {
        #[serde(default)]
        filter: Option<Inner>,
        #[serde(default)]
        ids: Vec<String>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Frame {
        Ping,
        Go { to: String, inner: Inner },
    }

    #[test]
    fn serde_alone_reads_an_array_as_a_struct() {
        // What this module exists for: if serde stops doing this, it can go.
        let plain: Outer = serde_json::from_value(json!({"filter": []})).unwrap();
        assert_eq!(plain.filter, Some(Inner { agent: None }));
        let frame: Frame = serde_json::from_value(json!(["go", "pink", ["x"]])).unwrap();
        assert!(matches!(frame, Frame::Go { .. }));
    }

    #[test]
    fn arrays_where_objects_belong_are_refused_with_where() {
        let err = from_str::<Outer>(r#"{"filter":[]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a JSON object at `filter`, found an array"
        );
        let err = from_str::<Outer>(r#"[{"agent":"x"}]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a JSON object at the top level, found an array"
        );
        let err = from_str::<Frame>(r#"["ping"]"#).unwrap_err();
        assert!(matches!(err, StrictError::NotAnObject { .. }), "{err}");
        let err = from_str::<Frame>(r#"{"type":"go","to":"p","inner":["x"]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a JSON object at `inner`, found an array"
        );
    }

    #[test]
    fn objects_and_real_arrays_are_taken() {
        let got: Outer = from_str(r#"{"filter":{"agent":"[x]"},"ids":["a","b"]}"#).unwrap();
        assert_eq!(got.filter.unwrap().agent.as_deref(), Some("[x]"));
        assert_eq!(got.ids, ["a", "b"]);
        assert_eq!(
            from_str::<Frame>(r#"{"type":"ping"}"#).unwrap(),
            Frame::Ping
        );
        assert_eq!(
            from_str::<Outer>("{}").unwrap(),
            Outer {
                filter: None,
                ids: vec![]
            }
        );
        // Not JSON, or the wrong type: serde's own message.
        assert!(matches!(from_str::<Outer>("{"), Err(StrictError::Json(_))));
        assert!(matches!(
            from_str::<Outer>(r#"{"ids":"a"}"#),
            Err(StrictError::Json(_))
        ));
    }
}
