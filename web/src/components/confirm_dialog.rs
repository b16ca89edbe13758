//! An in-page confirmation for destructive actions.

use yew::prelude::*;

/// Properties of [`ConfirmDialog`].
#[derive(Debug, Properties, PartialEq)]
pub struct ConfirmDialogProps {
    /// What is about to happen; the dialog shows while this is set.
    pub message: Option<AttrValue>,
    /// The operator confirmed.
    pub onconfirm: Callback<()>,
    /// The operator cancelled.
    pub oncancel: Callback<()>,
}

/// A modal-looking dialog with OK and Cancel (Escape cancels).
#[function_component(ConfirmDialog)]
pub fn confirm_dialog(props: &ConfirmDialogProps) -> Html {
    let ok_ref = use_node_ref();
    {
        let ok_ref = ok_ref.clone();
        use_effect_with(props.message.is_some(), move |shown| {
            if *shown {
                if let Some(el) = ok_ref.cast::<web_sys::HtmlElement>() {
                    let _ = el.focus();
                }
            }
        });
    }
    let Some(message) = props.message.clone() else {
        return Html::default();
    };
    let onkeydown = {
        let oncancel = props.oncancel.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                oncancel.emit(());
            }
        })
    };
    html! {
        <div class="backdrop" {onkeydown}>
            <div id="confirm-dialog" class="dialog" role="alertdialog" aria-modal="true"
                aria-labelledby="confirm-message">
                <p id="confirm-message">{ message }</p>
                <div class="actions">
                    <button id="confirm-ok" type="button" class="danger" ref={ok_ref}
                        onclick={props.onconfirm.reform(|_| ())}>{ "Confirm" }</button>
                    <button id="confirm-cancel" type="button"
                        onclick={props.oncancel.reform(|_| ())}>{ "Cancel" }</button>
                </div>
            </div>
        </div>
    }
}
