//! Publishing a task: to, priority, type, payload (checked JSON), errors inline.

use crate::route::Route;
use crate::services::tasks;
use cortex_shared::rest::PublishRequest;
use cortex_shared::Priority;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

/// Properties of [`PublishForm`].
#[derive(Debug, Properties, PartialEq)]
pub struct PublishFormProps {
    /// The route: a single picked agent is the default recipient.
    pub route: Route,
}

/// Checks the form; the request, or the error to show.
pub fn build_request(
    to: &str,
    priority: &str,
    task_type: &str,
    payload: &str,
) -> Result<PublishRequest, String> {
    let priority = Priority::parse(priority)
        .ok_or_else(|| format!("Unknown priority \u{201c}{priority}\u{201d}."))?;
    let task_type = task_type.trim();
    if task_type.is_empty() {
        return Err("The type is required.".into());
    }
    let payload = if payload.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str::<serde_json::Value>(payload)
            .map_err(|e| format!("Payload is not valid JSON: {e}"))?
    };
    if !payload.is_object() {
        return Err("Payload must be a JSON object, e.g. {\"description\":\"…\"}.".into());
    }
    Ok(PublishRequest {
        to: to.trim().to_owned(),
        priority,
        task_type: task_type.to_owned(),
        payload: Some(payload),
        from: None,
        parent_id: None,
        correlation_id: None,
    })
}

/// The publish form.
#[function_component(PublishForm)]
pub fn publish_form(props: &PublishFormProps) -> Html {
    let default_to = match props.route.agents.as_slice() {
        [one] => one.clone(),
        _ => String::new(),
    };
    let to = use_state(move || default_to);
    let priority = use_state(|| "normal".to_owned());
    let task_type = use_state(String::new);
    let payload = use_state(|| "{}".to_owned());
    let error = use_state(|| None::<String>);
    let result = use_state(|| None::<cortex_shared::rest::Published>);
    let busy = use_state(|| false);

    let text = |state: &UseStateHandle<String>| {
        let state = state.clone();
        let error = error.clone();
        Callback::from(move |e: InputEvent| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value());
            error.set(None);
        })
    };
    let onpayload = {
        let payload = payload.clone();
        let error = error.clone();
        Callback::from(move |e: InputEvent| {
            payload.set(e.target_unchecked_into::<HtmlTextAreaElement>().value());
            error.set(None);
        })
    };
    let onpriority = {
        let priority = priority.clone();
        Callback::from(move |e: Event| {
            priority.set(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let onsubmit = {
        let (to, priority, task_type, payload) = (
            to.clone(),
            priority.clone(),
            task_type.clone(),
            payload.clone(),
        );
        let (error, result, busy) = (error.clone(), result.clone(), busy.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match build_request(&to, &priority, &task_type, &payload) {
                Err(message) => {
                    error.set(Some(message));
                    result.set(None);
                }
                Ok(request) => {
                    let (error, result, busy) = (error.clone(), result.clone(), busy.clone());
                    busy.set(true);
                    yew::platform::spawn_local(async move {
                        match tasks::publish(&request).await {
                            Ok(published) => {
                                error.set(None);
                                result.set(Some(published));
                            }
                            Err(e) => {
                                error.set(Some(e.to_string()));
                                result.set(None);
                            }
                        }
                        busy.set(false);
                    });
                }
            }
        })
    };
    html! {
        <div id="view-publish" class="view">
            <section class="panel">
                <h2>{ "Publish a task" }</h2>
                <form id="publish-form" class="publish-form" {onsubmit} novalidate=true>
                    <label for="publish-to">{ "To" }</label>
                    <input id="publish-to" type="text" value={(*to).clone()} oninput={text(&to)}
                        placeholder="agent name, or empty / * for every agent" autocomplete="off" spellcheck="false" />
                    <label for="publish-priority">{ "Priority" }</label>
                    <select id="publish-priority" onchange={onpriority}>
                        { for Priority::ALL.into_iter().map(|p| html! {
                            <option value={p.as_str()} selected={*priority == p.as_str()}>{ p.as_str() }</option>
                        }) }
                    </select>
                    <label for="publish-type">{ "Type" }</label>
                    <input id="publish-type" type="text" value={(*task_type).clone()} oninput={text(&task_type)}
                        placeholder="coding" autocomplete="off" spellcheck="false" />
                    <label for="publish-payload">{ "Payload (JSON object)" }</label>
                    <textarea id="publish-payload" rows="8" spellcheck="false" value={(*payload).clone()} oninput={onpayload}
                        aria-invalid={error.is_some().to_string()} aria-describedby="publish-error" />
                    <p id="publish-error" class="field-error" role="alert">{ (*error).clone().unwrap_or_default() }</p>
                    <button id="publish-btn" type="submit" disabled={*busy}>{ "Publish" }</button>
                </form>
                if let Some(published) = &*result {
                    <p id="publish-result" class="status" role="status" data-task-id={published.task_id.clone()}
                        data-entry-id={published.entry_id.clone()} data-stream={published.stream.clone()}>
                        { format!("Published task {} as {} in {}", published.task_id, published.entry_id, published.stream) }
                    </p>
                }
            </section>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_payload_and_type() {
        assert!(build_request("pink", "high", "coding", "{x")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(build_request("pink", "high", "coding", "[1]")
            .unwrap_err()
            .contains("JSON object"));
        assert!(build_request("pink", "high", " ", "{}")
            .unwrap_err()
            .contains("type"));
        let ok = build_request(" pink ", "high", "coding", r#"{"a":1}"#).unwrap();
        assert_eq!((ok.to.as_str(), ok.priority), ("pink", Priority::High));
        assert_eq!(
            build_request("", "low", "t", "").unwrap().payload,
            Some(serde_json::json!({}))
        );
    }
}
