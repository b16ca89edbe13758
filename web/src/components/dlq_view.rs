//! Dead letters: the server-side filtered listing, paging, inspect, retry (edited or
//! not, at its priority or another), delete, and the same for all that match.

use super::ConfirmDialog;
use crate::route::{DlqFilterText, Route};
use crate::services::dlq;
use cortex_shared::rest::{DlqItem, DlqPage, RetryRequest};
use cortex_shared::Priority;
use std::rc::Rc;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

/// Letters per page.
const PAGE_SIZE: usize = 20;

/// Properties of [`DlqView`].
#[derive(Debug, Properties, PartialEq)]
pub struct DlqViewProps {
    /// The route (the filter).
    pub route: Route,
    /// The filter changed.
    pub onroute: Callback<Route>,
    /// Moves with every `dlq` frame.
    pub revision: u64,
    /// Ids retried or deleted since the last load.
    pub gone: Rc<Vec<String>>,
    /// A page was loaded.
    pub onloaded: Callback<()>,
}

#[derive(Debug, Clone, PartialEq)]
enum Pending {
    RetryOne(String, Option<Priority>, Option<serde_json::Value>),
    DeleteOne(String),
    RetryAll(Option<Priority>),
    DeleteAll,
}

impl Pending {
    fn message(&self, filter: &str) -> String {
        let to = |p: &Option<Priority>| match p {
            Some(p) => format!(" to {}", p.as_str()),
            None => " to its own priority".to_owned(),
        };
        match self {
            Pending::RetryOne(id, p, payload) => format!(
                "Retry dead letter {id}{}{}?",
                to(p),
                if payload.is_some() {
                    " with the edited payload"
                } else {
                    ""
                }
            ),
            Pending::DeleteOne(id) => format!("Delete dead letter {id}? This cannot be undone."),
            Pending::RetryAll(p) => format!("Retry every dead letter matching {filter}{}?", to(p)),
            Pending::DeleteAll => {
                format!("Delete every dead letter matching {filter}? This cannot be undone.")
            }
        }
    }
}

fn describe(filter: &DlqFilterText) -> String {
    let parts: Vec<String> = [
        ("agent", &filter.agent),
        ("priority", &filter.priority),
        ("type", &filter.task_type),
        ("error", &filter.error),
        ("payload", &filter.payload),
    ]
    .iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, v)| format!("{k} \u{201c}{}\u{201d}", v.trim()))
    .collect();
    if parts.is_empty() {
        "no filter (all letters)".to_owned()
    } else {
        parts.join(", ")
    }
}

fn pretty_text(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// The DLQ view.
#[function_component(DlqView)]
pub fn dlq_view(props: &DlqViewProps) -> Html {
    let draft = use_state(|| props.route.dlq.clone());
    let cursors = use_state(Vec::<String>::new);
    let page = use_state(|| None::<Rc<DlqPage>>);
    let error = use_state(|| None::<String>);
    let status = use_state(|| None::<String>);
    let reload = use_state(|| 0u64);
    let confirm = use_state(|| None::<Pending>);
    let inspecting = use_state(|| None::<DlqItem>);
    let edit_payload = use_state(String::new);
    let edit_priority = use_state(String::new);
    let bulk_priority = use_state(String::new);

    {
        let draft = draft.clone();
        let cursors = cursors.clone();
        use_effect_with(props.route.dlq.clone(), move |filter| {
            draft.set(filter.clone());
            cursors.set(Vec::new());
        });
    }
    {
        let page = page.clone();
        let error = error.clone();
        let onloaded = props.onloaded.clone();
        let filter = props.route.dlq.to_filter();
        let cursor = cursors.last().cloned();
        use_effect_with(
            (filter, cursor, props.revision, *reload),
            move |(filter, cursor, _, _)| {
                let filter = filter.clone();
                let cursor = cursor.clone();
                yew::platform::spawn_local(async move {
                    match dlq::list(&filter, PAGE_SIZE, cursor.as_deref()).await {
                        Ok(p) => {
                            page.set(Some(Rc::new(p)));
                            error.set(None);
                            onloaded.emit(());
                        }
                        Err(e) => error.set(Some(e.to_string())),
                    }
                });
            },
        );
    }

    let run = {
        let status = status.clone();
        let error = error.clone();
        let reload = reload.clone();
        let inspecting = inspecting.clone();
        let confirm = confirm.clone();
        let filter = props.route.dlq.to_filter();
        Callback::from(move |()| {
            let Some(action) = (*confirm).clone() else {
                return;
            };
            confirm.set(None);
            let status = status.clone();
            let error = error.clone();
            let reload = reload.clone();
            let inspecting = inspecting.clone();
            let filter = filter.clone();
            yew::platform::spawn_local(async move {
                let result = match action {
                    Pending::RetryOne(id, priority, payload) => dlq::retry(
                        &id,
                        &RetryRequest {
                            priority,
                            payload,
                            ..RetryRequest::default()
                        },
                    )
                    .await
                    .map(|r| format!("Retried {} as {} in {}", r.dlq_id, r.entry_id, r.stream)),
                    Pending::DeleteOne(id) => dlq::delete(&id)
                        .await
                        .map(|d| format!("Deleted {}", d.dlq_id)),
                    Pending::RetryAll(priority) => {
                        dlq::retry_matching(filter, priority).await.map(|r| {
                            format!(
                                "Retried {} of {} matching ({} gone, {} failed)",
                                r.acted, r.matched, r.gone, r.failed
                            )
                        })
                    }
                    Pending::DeleteAll => dlq::delete_matching(filter).await.map(|r| {
                        format!(
                            "Deleted {} of {} matching ({} gone, {} failed)",
                            r.acted, r.matched, r.gone, r.failed
                        )
                    }),
                };
                match result {
                    Ok(text) => {
                        status.set(Some(text));
                        error.set(None);
                        inspecting.set(None);
                    }
                    Err(e) => error.set(Some(e.to_string())),
                }
                reload.set(*reload + 1);
            });
        })
    };
    let ask = {
        let confirm = confirm.clone();
        move |p: Pending| confirm.set(Some(p))
    };

    let onfilter = {
        let draft = draft.clone();
        let onroute = props.onroute.clone();
        let route = props.route.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            onroute.emit(Route {
                dlq: (*draft).clone(),
                ..route.clone()
            });
        })
    };
    let field = |f: fn(&mut DlqFilterText, String)| {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            let mut next = (*draft).clone();
            f(
                &mut next,
                e.target_unchecked_into::<HtmlInputElement>().value(),
            );
            draft.set(next);
        })
    };
    let onpriority = {
        let draft = draft.clone();
        Callback::from(move |e: Event| {
            let mut next = (*draft).clone();
            next.priority = e.target_unchecked_into::<HtmlSelectElement>().value();
            draft.set(next);
        })
    };
    let priority_of = |text: &str| Priority::parse(text);

    let items: Vec<DlqItem> = page
        .as_ref()
        .map(|p| {
            p.items
                .iter()
                .filter(|i| !props.gone.contains(&i.dlq_id))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let next_cursor = page.as_ref().and_then(|p| p.next_cursor.clone());
    let onnext = {
        let cursors = cursors.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(c) = next_cursor.clone() {
                let mut next = (*cursors).clone();
                next.push(c);
                cursors.set(next);
            }
        })
    };
    let onprev = {
        let cursors = cursors.clone();
        Callback::from(move |_: MouseEvent| {
            let mut next = (*cursors).clone();
            next.pop();
            cursors.set(next);
        })
    };
    let filter_text = describe(&props.route.dlq);
    let select_priority = |id: &'static str, value: &UseStateHandle<String>, own: &'static str| {
        let value = value.clone();
        let onchange = {
            let value = value.clone();
            Callback::from(move |e: Event| {
                value.set(e.target_unchecked_into::<HtmlSelectElement>().value())
            })
        };
        html! {
            <select {id} {onchange} aria-label="Retry at priority">
                <option value="" selected={value.is_empty()}>{ own }</option>
                { for Priority::ALL.into_iter().map(|p| html! {
                    <option value={p.as_str()} selected={*value == p.as_str()}>{ p.as_str() }</option>
                }) }
            </select>
        }
    };

    let inspector = match &*inspecting {
        Some(item) => {
            let id = item.dlq_id.clone();
            let onpayload = {
                let edit_payload = edit_payload.clone();
                Callback::from(move |e: InputEvent| {
                    edit_payload.set(e.target_unchecked_into::<HtmlTextAreaElement>().value())
                })
            };
            let original = pretty_text(&item.letter.original_payload);
            let parsed: Result<Option<serde_json::Value>, String> =
                if edit_payload.trim() == original.trim() {
                    Ok(None)
                } else {
                    match serde_json::from_str::<serde_json::Value>(&edit_payload) {
                        Ok(v) if v.is_object() => Ok(Some(v)),
                        Ok(_) => Err("The payload must be a JSON object.".to_owned()),
                        Err(e) => Err(format!("Not valid JSON: {e}")),
                    }
                };
            let onretry = {
                let ask = ask.clone();
                let id = id.clone();
                let parsed = parsed.clone();
                let priority = priority_of(&edit_priority);
                Callback::from(move |_: MouseEvent| {
                    if let Ok(payload) = &parsed {
                        ask(Pending::RetryOne(id.clone(), priority, payload.clone()));
                    }
                })
            };
            let ondelete = {
                let ask = ask.clone();
                let id = id.clone();
                Callback::from(move |_: MouseEvent| ask(Pending::DeleteOne(id.clone())))
            };
            let onclose = {
                let inspecting = inspecting.clone();
                Callback::from(move |_: MouseEvent| inspecting.set(None))
            };
            let letter = &item.letter;
            html! {
                <section id="letter-inspector" class="panel inspector" data-dlq-id={id.clone()} aria-label="Dead letter">
                    <h2>{ format!("Dead letter {id}") }</h2>
                    <dl class="facts">
                        <dt>{ "task" }</dt><dd><a class="letter-task-link" href={letter_task_page(letter).to_hash()}><code>{ &letter.original_id }</code></a></dd>
                        <dt>{ "route" }</dt><dd>{ format!("{} → {}", letter.original_from, if letter.original_to.is_empty() { "all agents" } else { &letter.original_to }) }</dd>
                        <dt>{ "priority" }</dt><dd>{ &letter.original_priority }</dd>
                        <dt>{ "type" }</dt><dd>{ &letter.original_type }</dd>
                        <dt>{ "error" }</dt><dd class="letter-error">{ &letter.error }</dd>
                        <dt>{ "deliveries" }</dt><dd>{ letter.retry_count }</dd>
                        <dt>{ "from" }</dt><dd><code>{ format!("{} {}", letter.original_stream.clone().unwrap_or_default(), letter.original_entry_id.clone().unwrap_or_default()) }</code></dd>
                    </dl>
                    <label for="letter-payload">{ "Payload (edit, then retry)" }</label>
                    <textarea id="letter-payload" rows="8" spellcheck="false" value={(*edit_payload).clone()} oninput={onpayload}
                        aria-invalid={parsed.is_err().to_string()} aria-describedby="letter-payload-error" />
                    <p id="letter-payload-error" class="field-error">{ parsed.as_ref().err().cloned().unwrap_or_default() }</p>
                    <div class="actions">
                        { select_priority("letter-priority", &edit_priority, "its own priority") }
                        <button id="letter-retry" type="button" onclick={onretry} disabled={parsed.is_err()}>{ "Retry" }</button>
                        <button id="letter-delete" type="button" class="danger" onclick={ondelete}>{ "Delete" }</button>
                        <button id="letter-close" type="button" onclick={onclose}>{ "Close" }</button>
                    </div>
                </section>
            }
        }
        None => Html::default(),
    };

    let onretry_all = {
        let ask = ask.clone();
        let priority = priority_of(&bulk_priority);
        Callback::from(move |_: MouseEvent| ask(Pending::RetryAll(priority)))
    };
    let ondelete_all = {
        let ask = ask.clone();
        Callback::from(move |_: MouseEvent| ask(Pending::DeleteAll))
    };
    let oncancel = {
        let confirm = confirm.clone();
        Callback::from(move |()| confirm.set(None))
    };

    html! {
        <div id="view-dlq" class="view">
            <section class="panel">
                <h2>{ "Dead letters" }</h2>
                <form id="dlq-filter-form" class="filters" onsubmit={onfilter}>
                    <label>{ "Agent " }<input id="dlq-agent" type="text" value={draft.agent.clone()} oninput={field(|f, v| f.agent = v)} autocomplete="off" /></label>
                    <label>{ "Priority " }
                        <select id="dlq-priority" onchange={onpriority}>
                            <option value="" selected={draft.priority.is_empty()}>{ "any" }</option>
                            { for Priority::ALL.into_iter().map(|p| html! {
                                <option value={p.as_str()} selected={draft.priority == p.as_str()}>{ p.as_str() }</option>
                            }) }
                        </select>
                    </label>
                    <label>{ "Type " }<input id="dlq-type" type="text" value={draft.task_type.clone()} oninput={field(|f, v| f.task_type = v)} autocomplete="off" /></label>
                    <label>{ "Error " }<input id="dlq-error" type="text" value={draft.error.clone()} oninput={field(|f, v| f.error = v)} autocomplete="off" /></label>
                    <label>{ "Payload " }<input id="dlq-payload" type="text" value={draft.payload.clone()} oninput={field(|f, v| f.payload = v)} autocomplete="off" /></label>
                    <button id="dlq-apply" type="submit">{ "Apply" }</button>
                </form>
                <div class="toolbar">
                    <span id="dlq-filter-text" class="muted">{ format!("Filter: {filter_text}") }</span>
                    { select_priority("dlq-bulk-priority", &bulk_priority, "own priorities") }
                    <button id="dlq-retry-all" type="button" onclick={onretry_all}>{ "Retry all matching" }</button>
                    <button id="dlq-delete-all" type="button" class="danger" onclick={ondelete_all}>{ "Delete all matching" }</button>
                </div>
                <p id="dlq-status" class="status" role="status" aria-live="polite">{ (*status).clone().unwrap_or_default() }</p>
                <p id="dlq-error-msg" class="field-error" role="alert">{ (*error).clone().unwrap_or_default() }</p>
                if page.is_some() && items.is_empty() {
                    <p id="dlq-empty" class="empty">{ "No dead letters match." }</p>
                }
                <ul id="dlq-list" class="dlq-list" data-loaded={page.is_some().to_string()}>
                    { for items.iter().map(|item| {
                        let id = item.dlq_id.clone();
                        let letter = &item.letter;
                        let oninspect = {
                            let inspecting = inspecting.clone();
                            let edit_payload = edit_payload.clone();
                            let edit_priority = edit_priority.clone();
                            let item = item.clone();
                            Callback::from(move |_: MouseEvent| {
                                edit_payload.set(pretty_text(&item.letter.original_payload));
                                edit_priority.set(String::new());
                                inspecting.set(Some(item.clone()));
                            })
                        };
                        let onretry = {
                            let ask = ask.clone();
                            let id = id.clone();
                            Callback::from(move |_: MouseEvent| ask(Pending::RetryOne(id.clone(), None, None)))
                        };
                        let ondelete = {
                            let ask = ask.clone();
                            let id = id.clone();
                            Callback::from(move |_: MouseEvent| ask(Pending::DeleteOne(id.clone())))
                        };
                        html! {
                            <li key={id.clone()} class="letter" data-dlq-id={id.clone()} data-task-id={letter.original_id.clone()}>
                                <div class="task-head">
                                    <span class={classes!("badge", format!("priority-{}", letter.original_priority))}>{ &letter.original_priority }</span>
                                    <span class="task-type">{ &letter.original_type }</span>
                                    <span class="task-route">{ format!("{} → {}", letter.original_from, if letter.original_to.is_empty() { "all agents" } else { &letter.original_to }) }</span>
                                    <a class="letter-task-link" href={letter_task_page(letter).to_hash()}
                                        aria-label={format!("Open task {}", letter.original_id)}><code class="letter-task">{ &letter.original_id }</code></a>
                                </div>
                                <p class="letter-error">{ &letter.error }</p>
                                <div class="actions">
                                    <button type="button" class="letter-inspect small" onclick={oninspect}>{ "Inspect" }</button>
                                    <button type="button" class="letter-retry small" onclick={onretry}>{ "Retry" }</button>
                                    <button type="button" class="letter-delete small danger" onclick={ondelete}>{ "Delete" }</button>
                                </div>
                            </li>
                        }
                    }) }
                </ul>
                <div class="pager">
                    <button id="dlq-prev" type="button" onclick={onprev} disabled={cursors.is_empty()}>{ "← Newer" }</button>
                    <span id="dlq-page">{ format!("Page {}", cursors.len() + 1) }</span>
                    <button id="dlq-next" type="button" onclick={onnext} disabled={page.as_ref().and_then(|p| p.next_cursor.as_ref()).is_none()}>{ "Older →" }</button>
                </div>
            </section>
            { inspector }
            <ConfirmDialog message={(*confirm).as_ref().map(|p| AttrValue::from(p.message(&filter_text)))}
                onconfirm={run} {oncancel} />
        </div>
    }
}

/// The task page of a letter's task: by its entry when the letter names it, else by id.
fn letter_task_page(letter: &cortex_shared::DeadLetter) -> crate::route::Page {
    crate::route::Page::task(
        &letter.original_id,
        letter.original_stream.as_deref().unwrap_or_default(),
        letter.original_entry_id.as_deref().unwrap_or_default(),
    )
}
