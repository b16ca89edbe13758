//! The token form, shown when the relay wants a token (HTTP 401 or WebSocket 4401).

use crate::services::auth;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Properties of [`LoginForm`].
#[derive(Debug, Properties, PartialEq)]
pub struct LoginFormProps {
    /// Why a token is asked for.
    pub reason: AttrValue,
}

/// Asks for a token, checks it with the relay (`GET /api/v1/agents`), keeps it in the
/// tab's `sessionStorage` and reloads the page, which then connects with it.
#[function_component(LoginForm)]
pub fn login_form(props: &LoginFormProps) -> Html {
    let input = use_node_ref();
    let error = use_state(String::new);
    let busy = use_state(|| false);
    {
        let input = input.clone();
        use_effect_with((), move |()| {
            if let Some(el) = input.cast::<HtmlInputElement>() {
                let _ = el.focus();
            }
        });
    }
    let onsubmit = {
        let input = input.clone();
        let error = error.clone();
        let busy = busy.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let token = input
                .cast::<HtmlInputElement>()
                .map(|el| el.value().trim().to_owned())
                .unwrap_or_default();
            if token.is_empty() {
                error.set("Enter a token.".into());
                return;
            }
            let error = error.clone();
            let busy = busy.clone();
            busy.set(true);
            yew::platform::spawn_local(async move {
                match auth::check(&token).await {
                    Ok(()) if auth::store(&token) => {
                        if let Some(window) = web_sys::window() {
                            let _ = window.location().reload();
                        }
                    }
                    Ok(()) => {
                        busy.set(false);
                        error.set("This browser does not let the page keep the token.".into());
                    }
                    Err(e) if e.code == "unauthorized" => {
                        busy.set(false);
                        error.set("The relay refused this token.".into());
                    }
                    Err(e) => {
                        busy.set(false);
                        error.set(format!("Could not check the token: {e}"));
                    }
                }
            });
        })
    };
    html! {
        <section id="login" class="panel login" aria-labelledby="login-title">
            <h2 id="login-title">{ "Token required" }</h2>
            <p id="login-reason" class="muted">{ props.reason.clone() }</p>
            <form id="login-form" class="filters" {onsubmit}>
                <label>{ "Token " }
                    <input id="login-token" ref={input} type="password" autocomplete="off"
                        spellcheck="false" aria-describedby="login-error" />
                </label>
                <button id="login-btn" type="submit" disabled={*busy}>{ "Sign in" }</button>
            </form>
            <p id="login-error" class="field-error" role="alert">{ (*error).clone() }</p>
            <p class="muted">{ "The token is kept for this tab only (sessionStorage), and sent to this relay alone." }</p>
        </section>
    }
}
