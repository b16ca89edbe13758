//! Calling a callback now and then every `period` while the component lives.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use yew::prelude::*;

/// Emits `tick` at once and then every `period` until the component goes; the latest
/// `tick` given is the one called.
#[hook]
pub fn use_poll(period: Duration, tick: Callback<()>) {
    let latest = use_mut_ref(|| tick.clone());
    *latest.borrow_mut() = tick;
    use_effect_with(period, move |period| {
        let alive = Rc::new(Cell::new(true));
        let period = *period;
        {
            let alive = Rc::clone(&alive);
            let latest: Rc<RefCell<Callback<()>>> = latest;
            yew::platform::spawn_local(async move {
                while alive.get() {
                    let tick = latest.borrow().clone();
                    tick.emit(());
                    yew::platform::time::sleep(period).await;
                }
            });
        }
        move || alive.set(false)
    });
}
