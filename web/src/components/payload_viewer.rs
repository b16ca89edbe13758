//! A task's payload, pretty, with a copy button.

use crate::state::TaskRow;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

/// Properties of [`PayloadViewer`].
#[derive(Debug, Properties, PartialEq)]
pub struct PayloadViewerProps {
    /// The task shown; nothing while `None`.
    pub row: Option<Rc<TaskRow>>,
    /// The operator closed the viewer.
    pub onclose: Callback<()>,
}

/// Where the last copy went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copy {
    /// Not copied yet.
    Idle,
    /// Under way (the clipboard API answers asynchronously).
    Copying,
    /// The text is on the clipboard.
    Copied,
    /// Neither the clipboard API nor the fallback could copy (e.g. no permission).
    Failed,
}

impl Copy {
    fn as_str(self) -> &'static str {
        match self {
            Copy::Idle => "idle",
            Copy::Copying => "copying",
            Copy::Copied => "copied",
            Copy::Failed => "failed",
        }
    }
}

/// Copies with the older `document.execCommand("copy")` from the hidden textarea that
/// holds the text; whether the browser says it copied.
fn copy_by_selection(textarea: &NodeRef) -> bool {
    let Some(textarea) = textarea.cast::<HtmlTextAreaElement>() else {
        return false;
    };
    textarea.select();
    let copied = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok())
        .and_then(|d| d.exec_command("copy").ok())
        .unwrap_or(false);
    let _ = textarea.blur();
    copied
}

/// Calls `then(on_ok, on_err)` on `promise` with one-shot closures (freed once called).
fn on_settled(
    promise: &js_sys::Promise,
    on_ok: impl FnOnce() + 'static,
    on_err: impl FnOnce() + 'static,
) {
    let ok = Closure::once_into_js(move |_: JsValue| on_ok());
    let err = Closure::once_into_js(move |_: JsValue| on_err());
    let then = js_sys::Reflect::get(promise, &JsValue::from_str("then"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(then) = then {
        let _ = then.call2(promise, &ok, &err);
    }
}

/// The payload viewer. Copy writes the payload with the clipboard API, or, where that
/// is refused, by selecting it; `#payload-copy[data-copy-state]` says how it went.
#[function_component(PayloadViewer)]
pub fn payload_viewer(props: &PayloadViewerProps) -> Html {
    let copy = use_state(|| Copy::Idle);
    let copy_text = use_node_ref();
    {
        // A new task starts afresh.
        let copy = copy.clone();
        let key = props
            .row
            .as_ref()
            .map(|r| (r.stream.clone(), r.entry_id.clone()));
        use_effect_with(key, move |_| copy.set(Copy::Idle));
    }
    let Some(row) = props.row.clone() else {
        return Html::default();
    };
    let oncopy = {
        let copy = copy.clone();
        let copy_text = copy_text.clone();
        let text = row.payload.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(window) = web_sys::window() else {
                return;
            };
            copy.set(Copy::Copying);
            let promise = window.navigator().clipboard().write_text(&text);
            let done = copy.clone();
            let fallback = copy.clone();
            let copy_text = copy_text.clone();
            on_settled(
                &promise,
                move || done.set(Copy::Copied),
                move || {
                    fallback.set(if copy_by_selection(&copy_text) {
                        Copy::Copied
                    } else {
                        Copy::Failed
                    })
                },
            );
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
    let label = match *copy {
        Copy::Idle | Copy::Copying => "Copy",
        Copy::Copied => "Copied",
        Copy::Failed => "Copy failed: select the text",
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
                <textarea id="payload-copy-text" class="offscreen" ref={copy_text} readonly=true
                    tabindex="-1" aria-hidden="true" value={row.payload.clone()} />
                <div class="actions">
                    <button id="payload-copy" type="button" onclick={oncopy}
                        data-copy-state={copy.as_str()}>
                        { label }
                    </button>
                    <button id="payload-close" type="button"
                        onclick={props.onclose.reform(|_| ())}>{ "Close" }</button>
                </div>
            </div>
        </div>
    }
}
