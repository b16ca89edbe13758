//! The hook through which components reach the relay.

use super::RelayHandle;
use yew::prelude::*;

/// The relay provided by the nearest `RelayProvider` above this component.
///
/// # Panics
/// When there is no `RelayProvider` above: a programming error, not a runtime one.
#[hook]
pub fn use_relay() -> RelayHandle {
    use_context::<RelayHandle>().expect("use_relay needs a RelayProvider above it")
}
