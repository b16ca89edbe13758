//! Choosing the agent to watch: a name (or `*`), checked before it is sent.

use cortex_shared::SubscribeTarget;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// Properties of [`AgentPicker`].
#[derive(Debug, Properties, PartialEq)]
pub struct AgentPickerProps {
    /// What the operator asked to watch.
    pub target: Option<SubscribeTarget>,
    /// What the relay confirmed it is sending.
    pub watching: Option<String>,
    /// The operator submitted a valid name (or `*`).
    pub onwatch: Callback<SubscribeTarget>,
}

/// The agent form, with its inline error, and what is being watched.
#[function_component(AgentPicker)]
pub fn agent_picker(props: &AgentPickerProps) -> Html {
    let text = use_state(String::new);
    let error = use_state(|| None::<String>);

    let oninput = {
        let text = text.clone();
        let error = error.clone();
        Callback::from(move |e: InputEvent| {
            text.set(e.target_unchecked_into::<HtmlInputElement>().value());
            error.set(None);
        })
    };
    let onsubmit = {
        let text = text.clone();
        let error = error.clone();
        let onwatch = props.onwatch.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match SubscribeTarget::parse(text.trim()) {
                Ok(target) => {
                    error.set(None);
                    onwatch.emit(target);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };

    let watching = props.watching.clone().unwrap_or_default();
    let status = match (&props.target, &props.watching) {
        (_, Some(agent)) if agent == cortex_shared::ALL_AGENTS => "Watching every agent".to_owned(),
        (_, Some(agent)) => format!("Watching {agent}"),
        (Some(target), None) => format!("Subscribing to {}…", target.as_str()),
        (None, None) => "Not watching any agent yet".to_owned(),
    };
    html! {
        <section class="panel picker">
            <form id="agent-form" class="agent-form" {onsubmit} novalidate=true>
                <label for="agent-input">{ "Agent" }</label>
                <input id="agent-input" type="text" value={(*text).clone()} {oninput}
                    placeholder="pink, or * for every agent" autocomplete="off"
                    spellcheck="false" aria-describedby="agent-error"
                    aria-invalid={error.is_some().to_string()} />
                <button id="watch-btn" type="submit">{ "Watch" }</button>
            </form>
            <p id="agent-error" class="field-error" aria-live="polite">
                { (*error).clone().unwrap_or_default() }
            </p>
            <p id="watching" class="watching" data-agent={watching}>{ status }</p>
        </section>
    }
}
