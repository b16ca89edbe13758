//! Crossing into JavaScript: plain objects to and from JSON, arguments checked without
//! panicking, promises, and callbacks whose exceptions stay the caller's.

use super::endpoint::Endpoint;
use super::error::{code, ClientError};
use js_sys::{Function, Object, Promise, Reflect, JSON};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

/// The two functions that settle a promise.
#[derive(Debug)]
pub(crate) struct Resolver {
    resolve: Function,
    reject: Function,
}

impl Resolver {
    /// Fulfils the promise with `value`.
    pub(crate) fn resolve(self, value: &JsValue) {
        // Settling a promise's own functions does not throw.
        let _ = self.resolve.call1(&JsValue::NULL, value);
    }

    /// Rejects the promise with `error` as a JavaScript `Error`.
    pub(crate) fn reject(self, error: &ClientError) {
        let _ = self.reject.call1(&JsValue::NULL, &error.to_js());
    }

    /// Settles the promise with a JSON result.
    pub(crate) fn settle(self, result: Result<Value, ClientError>) {
        match result {
            Ok(value) => self.resolve(&to_js(&value)),
            Err(error) => self.reject(&error),
        }
    }
}

/// A new promise, and the resolver that settles it.
pub(crate) fn promise() -> (Promise, Resolver) {
    let mut slot = None;
    let promise = Promise::new(&mut |resolve, reject| slot = Some(Resolver { resolve, reject }));
    // The executor runs synchronously inside `new Promise`, so the slot is filled.
    let resolver = slot.unwrap_or_else(|| Resolver {
        resolve: JsValue::UNDEFINED.unchecked_into(),
        reject: JsValue::UNDEFINED.unchecked_into(),
    });
    (promise, resolver)
}

/// A promise already rejected with `error`.
pub(crate) fn rejected(error: &ClientError) -> Promise {
    Promise::reject(&error.to_js())
}

/// A JSON value as a plain JavaScript value.
pub(crate) fn to_js(value: &Value) -> JsValue {
    // serde_json writes valid JSON, which JSON.parse reads back.
    JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

/// A plain JavaScript value as JSON; `None` for `undefined` and `null`.
pub(crate) fn from_js(value: &JsValue, what: &str) -> Result<Option<Value>, ClientError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let text = JSON::stringify(value)
        .ok()
        .and_then(|text| text.as_string())
        .ok_or_else(|| {
            ClientError::argument(format!(
                "{what} cannot be written as JSON (a cycle, a BigInt?)"
            ))
        })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ClientError::argument(format!("{what}: {e}")))
}

/// A JSON object argument (`{}` when absent), e.g. a heartbeat's status.
pub(crate) fn object_arg(
    value: &JsValue,
    what: &str,
) -> Result<serde_json::Map<String, Value>, ClientError> {
    match from_js(value, what)? {
        None => Ok(serde_json::Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(ClientError::argument(format!(
            "{what} must be an object, not {other}"
        ))),
    }
}

/// A typed request body, its unknown fields refused (the relay refuses them too).
pub(crate) fn typed_arg<T: serde::de::DeserializeOwned>(
    value: &JsValue,
    what: &str,
) -> Result<Option<T>, ClientError> {
    from_js(value, what)?
        .map(|value| {
            serde_json::from_value(value).map_err(|e| ClientError::argument(format!("{what}: {e}")))
        })
        .transpose()
}

/// A string argument.
pub(crate) fn string_arg(value: &JsValue, what: &str) -> Result<String, ClientError> {
    value
        .as_string()
        .ok_or_else(|| ClientError::argument(format!("{what} must be a string")))
}

/// An optional string argument (`undefined`, `null` and `""` are none).
pub(crate) fn optional_string_arg(
    value: &JsValue,
    what: &str,
) -> Result<Option<String>, ClientError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let text = string_arg(value, what)?;
    Ok((!text.is_empty()).then_some(text))
}

/// A function argument.
pub(crate) fn function_arg(value: &JsValue, what: &str) -> Result<Function, ClientError> {
    value
        .dyn_ref::<Function>()
        .cloned()
        .ok_or_else(|| ClientError::argument(format!("{what} must be a function")))
}

/// A property of an options object (`undefined` when `options` is not an object).
pub(crate) fn property(options: &JsValue, key: &str) -> JsValue {
    if !options.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(options, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Calls a callback of the page; an exception it throws is logged, not propagated into
/// the client's own state.
pub(crate) fn call(callback: &Function, args: &[&JsValue]) {
    let result = match args {
        [] => callback.call0(&JsValue::NULL),
        [a] => callback.call1(&JsValue::NULL, a),
        [a, b] => callback.call2(&JsValue::NULL, a, b),
        _ => callback.call3(&JsValue::NULL, args[0], args[1], args[2]),
    };
    if let Err(thrown) = result {
        web_sys::console::error_2(&"cortex: a callback threw".into(), &thrown);
    }
}

/// Adds the methods `names` of `handle` (a `#[wasm_bindgen]` object) to `target` as
/// bound functions, not enumerable: `JSON.stringify(target)` still gives its data.
pub(crate) fn attach_methods(target: &JsValue, handle: &JsValue, names: &[&str]) {
    let (Some(target), true) = (target.dyn_ref::<Object>(), handle.is_object()) else {
        return;
    };
    for name in names {
        let key = JsValue::from_str(name);
        let Some(method) = Reflect::get(handle, &key)
            .ok()
            .and_then(|m| m.dyn_into::<Function>().ok())
        else {
            continue;
        };
        let descriptor = Object::new();
        let _ = Reflect::set(&descriptor, &"value".into(), &method.bind0(handle));
        // Not enumerable, not writable, not configurable: the defaults.
        Object::define_property(target, &key, &descriptor);
    }
}

/// The relay's addresses from `url`, resolved against the page's address when relative
/// (so `"/"` is the relay that served the page).
pub(crate) fn endpoint(url: &str) -> Result<Endpoint, ClientError> {
    let base = Reflect::get(&js_sys::global(), &"location".into())
        .ok()
        .filter(JsValue::is_object)
        .and_then(|location| Reflect::get(&location, &"href".into()).ok())
        .and_then(|href| href.as_string());
    let parsed = match &base {
        Some(base) => web_sys::Url::new_with_base(url, base),
        None => web_sys::Url::new(url),
    }
    .map_err(|_| ClientError::new(code::INVALID_URL, format!("{url:?} is not a URL")))?;
    Endpoint::from_parts(&parsed.protocol(), &parsed.host(), &parsed.pathname())
}
