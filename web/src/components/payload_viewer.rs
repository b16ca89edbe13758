//! A task's payload, pretty, with a copy button.

use crate::state::TaskRow;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`PayloadViewer`].
#[derive(Debug, Properties, PartialEq)]
pub struct PayloadViewerProps {
    /// The task shown; nothing while `None`.
    pub row: Option<Rc<TaskRow>>,
    /// The operator closed the viewer.
    pub onclose: Callback<()>,
}

/// The payload viewer.
#[function_component(PayloadViewer)]
pub fn payload_viewer(props: &PayloadViewerProps) -> Html {
    let copied = use_state(|| false);
    let Some(row) = props.row.clone() else {
        return Html::default();
    };
    let oncopy = {
        let copied = copied.clone();
        let text = row.payload.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(window) = web_sys::window() {
                let _ = window.navigator().clipboard().write_text(&text);
                copied.set(true);
            }
        })
    };
    let onkeydown = {
        let onclose = props.onclose.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                onclose.emit(());
            }
        })
    };
    html! {
        <div class="backdrop" {onkeydown}>
            <div id="payload-viewer" class="dialog wide" role="dialog" aria-modal="true"
                aria-labelledby="payload-title" data-task-id={row.task.id.clone()}>
                <h2 id="payload-title">{ format!("Payload of {}", row.task.id) }</h2>
                <p class="task-meta">
                    <code>{ format!("{} {}", row.stream, row.entry_id) }</code>
                </p>
                <pre id="payload-json" class="payload-json" tabindex="0">{ &row.payload }</pre>
                <div class="actions">
                    <button id="payload-copy" type="button" onclick={oncopy}>
                        { if *copied { "Copied" } else { "Copy" } }
                    </button>
                    <button id="payload-close" type="button"
                        onclick={props.onclose.reform(|_| ())}>{ "Close" }</button>
                </div>
            </div>
        </div>
    }
}
