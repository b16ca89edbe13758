//! The route held in the page's URL hash, kept in step with `hashchange`.

use crate::route::Route;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use yew::prelude::*;

fn current_hash() -> String {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default()
}

/// The current [`Route`], and a callback that moves to another (writing the hash, so
/// back, forward, reload and links all work).
#[hook]
pub fn use_route() -> (Route, Callback<Route>) {
    let route = use_state(|| Route::parse(&current_hash()));
    {
        let route = route.clone();
        use_effect_with((), move |()| {
            let listener =
                Closure::<dyn Fn()>::new(move || route.set(Route::parse(&current_hash())));
            let window = web_sys::window();
            if let Some(window) = &window {
                let _ = window.add_event_listener_with_callback(
                    "hashchange",
                    listener.as_ref().unchecked_ref(),
                );
            }
            move || {
                if let Some(window) = window {
                    let _ = window.remove_event_listener_with_callback(
                        "hashchange",
                        listener.as_ref().unchecked_ref(),
                    );
                }
                drop(listener);
            }
        });
    }
    let navigate = {
        let route = route.clone();
        Callback::from(move |next: Route| {
            if let Some(window) = web_sys::window() {
                let hash = next.to_hash();
                if current_hash() != hash {
                    let _ = window.location().set_hash(&hash);
                }
            }
            route.set(next);
        })
    };
    ((*route).clone(), navigate)
}
