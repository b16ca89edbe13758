//! A row of the feed saying that entries were lost before they could be shown.

use crate::state::GapRow;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`GapItem`].
#[derive(Debug, Properties)]
pub struct GapItemProps {
    /// Which stream lost entries, and where.
    pub gap: Rc<GapRow>,
}

impl PartialEq for GapItemProps {
    fn eq(&self, other: &Self) -> bool {
        // Rows never change once made.
        Rc::ptr_eq(&self.gap, &other.gap)
    }
}

/// A gap: entries of a stream trimmed from Redis (or too many to replay) while the
/// dashboard was disconnected.
#[function_component(GapItem)]
pub fn gap_item(props: &GapItemProps) -> Html {
    let GapRow {
        stream,
        after,
        resumed_from,
    } = &*props.gap;
    html! {
        <li class="gap" role="note" data-stream={stream.clone()} data-after={after.clone()}
            title="Redis trimmed these entries (or there were too many to replay) while the dashboard was disconnected"
            data-resumed-from={resumed_from.clone()}>
            <span class="gap-mark" aria-hidden="true">{ "⚠" }</span>
            <span class="gap-text">
                { "Entries trimmed from " }<code class="gap-stream">{ stream }</code>
                { " before they could be shown." }
            </span>
            <span class="gap-range">
                { "after " }<code>{ after }</code>{ ", resumed at " }<code>{ resumed_from }</code>
            </span>
        </li>
    }
}
