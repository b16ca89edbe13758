//! The page's clock, for texts that age ("in progress for 12 s").

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use yew::prelude::*;

/// Now, unix ms (the page's clock); while `ticking`, the component renders again every
/// second with the new time.
#[hook]
pub fn use_now(ticking: bool) -> u64 {
    let now = use_state(|| js_sys::Date::now() as u64);
    {
        let now = now.clone();
        use_effect_with(ticking, move |ticking| {
            let alive = Rc::new(Cell::new(true));
            if *ticking {
                let alive = Rc::clone(&alive);
                yew::platform::spawn_local(async move {
                    while alive.get() {
                        now.set(js_sys::Date::now() as u64);
                        yew::platform::time::sleep(Duration::from_secs(1)).await;
                    }
                });
            }
            move || alive.set(false)
        });
    }
    *now
}
