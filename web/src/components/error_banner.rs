//! The relay's last error frame, until the operator dismisses it.

use crate::state::RelayError;
use yew::prelude::*;

/// Properties of [`ErrorBanner`].
#[derive(Debug, Properties, PartialEq)]
pub struct ErrorBannerProps {
    /// The error to show; the banner is hidden (but present) without one.
    pub error: Option<RelayError>,
    /// The operator dismissed the error.
    pub ondismiss: Callback<()>,
}

/// A dismissable banner for the relay's last `error` frame.
#[function_component(ErrorBanner)]
pub fn error_banner(props: &ErrorBannerProps) -> Html {
    let ondismiss = props.ondismiss.reform(|_: MouseEvent| ());
    let body = match &props.error {
        Some(error) => html! {
            <>
                <code class="error-code">{ error.code.as_str() }</code>
                <span class="error-message">{ &error.message }</span>
                <button type="button" class="dismiss" onclick={ondismiss}
                    aria-label="Dismiss">{ "×" }</button>
            </>
        },
        None => Html::default(),
    };
    html! {
        <div id="relay-error" class="relay-error" role="alert" hidden={props.error.is_none()}>
            { body }
        </div>
    }
}
