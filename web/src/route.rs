//! What the URL holds: the view, the picked agents and the filters, in the hash
//! (`#/tasks?agents=pink,harold&priority=high&q=auth`), so a link or a reload opens the
//! same place; or one task, agent or trace (`#/tasks/<task id>`, `#/agents/<name>`,
//! `#/traces/<correlation id>`). Parsing and printing are plain functions, tested on
//! the host.

/// The dashboard's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum View {
    /// Agents with presence, status, pending tasks and consumers.
    Agents,
    /// The live task feed.
    #[default]
    Tasks,
    /// Dead letters.
    Dlq,
    /// Streams, groups and throughput.
    Streams,
    /// The publish form.
    Publish,
}

impl View {
    /// Every view, in the order of the navigation.
    pub const ALL: [View; 5] = [
        View::Agents,
        View::Tasks,
        View::Dlq,
        View::Streams,
        View::Publish,
    ];

    /// Its path segment (`agents`, `tasks`, `dlq`, `streams`, `publish`).
    pub fn as_str(self) -> &'static str {
        match self {
            View::Agents => "agents",
            View::Tasks => "tasks",
            View::Dlq => "dlq",
            View::Streams => "streams",
            View::Publish => "publish",
        }
    }

    /// Its title in the navigation.
    pub fn title(self) -> &'static str {
        match self {
            View::Agents => "Agents",
            View::Tasks => "Tasks",
            View::Dlq => "Dead letters",
            View::Streams => "Streams",
            View::Publish => "Publish",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        View::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// The DLQ listing's filters (the API's query parameters; empty: no filter).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DlqFilterText {
    /// `original_to` or `original_from`.
    pub agent: String,
    /// `original_priority`.
    pub priority: String,
    /// `original_type`.
    pub task_type: String,
    /// Text in the error.
    pub error: String,
    /// Text in the payload.
    pub payload: String,
}

impl DlqFilterText {
    /// The filter as the API takes it.
    pub fn to_filter(&self) -> cortex_shared::rest::DlqFilter {
        let opt = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        };
        cortex_shared::rest::DlqFilter {
            agent: opt(&self.agent),
            priority: opt(&self.priority),
            task_type: opt(&self.task_type),
            error: opt(&self.error),
            payload: opt(&self.payload),
            since_ms: None,
            until_ms: None,
        }
    }
}

/// A page of one thing, below a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// `#/tasks/<id>`: one task. With `?stream=…&entry=…` it is read by its entry
    /// (which always works), else by its id (within the lifecycle's retention).
    Task {
        /// The task's `id`.
        id: String,
        /// Its stream, when known (empty: find it by id).
        stream: String,
        /// Its entry id, when known.
        entry_id: String,
    },
    /// `#/agents/<name>`: one agent.
    Agent(String),
    /// `#/traces/<correlation id>`: one trace.
    Trace(String),
}

impl Page {
    /// The view it belongs to (for the navigation).
    pub fn view(&self) -> View {
        match self {
            Page::Task { .. } | Page::Trace(_) => View::Tasks,
            Page::Agent(_) => View::Agents,
        }
    }

    /// The hash of this page alone (`#/tasks/t-1?stream=…&entry=…`).
    pub fn to_hash(&self) -> String {
        Route {
            view: self.view(),
            page: Some(self.clone()),
            ..Route::default()
        }
        .to_hash()
    }

    /// The task page of the task at `stream`/`entry_id`.
    pub fn task(id: &str, stream: &str, entry_id: &str) -> Self {
        Page::Task {
            id: id.to_owned(),
            stream: stream.to_owned(),
            entry_id: entry_id.to_owned(),
        }
    }
}

/// Everything the URL holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    /// The view shown.
    pub view: View,
    /// One task, agent or trace, when the path names one.
    pub page: Option<Page>,
    /// The picked agents; empty: every agent.
    pub agents: Vec<String>,
    /// Tasks view: only this priority (empty: any).
    pub priority: String,
    /// Tasks view: only this type (empty: any).
    pub task_type: String,
    /// Tasks view: text searched in the payload (and id).
    pub search: String,
    /// Tasks view: history from this time (UTC, as `format::utc_ms` writes it); empty:
    /// the live feed.
    pub from: String,
    /// Tasks view: history up to this time (empty: until now).
    pub to: String,
    /// DLQ view: the listing's filters.
    pub dlq: DlqFilterText,
}

impl Route {
    /// Parses a location hash (`#/dlq?dlq_error=timeout`); anything unknown is ignored.
    pub fn parse(hash: &str) -> Self {
        let hash = hash.trim_start_matches('#').trim_start_matches('/');
        let (path, query) = hash.split_once('?').unwrap_or((hash, ""));
        let path = path.trim_end_matches('/');
        let (view, rest) = path.split_once('/').unwrap_or((path, ""));
        let name = decode(rest);
        let page = match view {
            _ if name.is_empty() => None,
            "tasks" => Some(Page::task(&name, "", "")),
            "agents" => Some(Page::Agent(name)),
            "traces" => Some(Page::Trace(name)),
            _ => None,
        };
        let mut route = Route {
            view: match &page {
                Some(page) => page.view(),
                None => View::parse(path).unwrap_or_default(),
            },
            page,
            ..Route::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            if let Some(Page::Task {
                stream, entry_id, ..
            }) = &mut route.page
            {
                match key {
                    "stream" => *stream = value.clone(),
                    "entry" => *entry_id = value.clone(),
                    _ => {}
                }
            }
            match key {
                "agents" => {
                    route.agents = value
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty() && *a != "*")
                        .map(str::to_owned)
                        .collect();
                }
                "priority" => route.priority = value,
                "type" => route.task_type = value,
                "q" => route.search = value,
                "from" => route.from = value,
                "to" => route.to = value,
                "dlq_agent" => route.dlq.agent = value,
                "dlq_priority" => route.dlq.priority = value,
                "dlq_type" => route.dlq.task_type = value,
                "dlq_error" => route.dlq.error = value,
                "dlq_payload" => route.dlq.payload = value,
                _ => {}
            }
        }
        route
    }

    /// The hash for this route, `#/view?…` (only the parameters that are set).
    pub fn to_hash(&self) -> String {
        let agents = self.agents.join(",");
        let (path, stream, entry_id) = match &self.page {
            None => (self.view.as_str().to_owned(), "", ""),
            Some(Page::Task {
                id,
                stream,
                entry_id,
            }) => (
                format!("tasks/{}", encode_segment(id)),
                stream.as_str(),
                entry_id.as_str(),
            ),
            Some(Page::Agent(name)) => (format!("agents/{}", encode_segment(name)), "", ""),
            Some(Page::Trace(id)) => (format!("traces/{}", encode_segment(id)), "", ""),
        };
        let pairs = [
            ("stream", stream),
            ("entry", entry_id),
            ("agents", agents.as_str()),
            ("priority", &self.priority),
            ("type", &self.task_type),
            ("q", &self.search),
            ("from", &self.from),
            ("to", &self.to),
            ("dlq_agent", &self.dlq.agent),
            ("dlq_priority", &self.dlq.priority),
            ("dlq_type", &self.dlq.task_type),
            ("dlq_error", &self.dlq.error),
            ("dlq_payload", &self.dlq.payload),
        ];
        let query: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if query.is_empty() {
            format!("#/{path}")
        } else {
            format!("#/{path}?{}", query.join("&"))
        }
    }

    /// The same route on another view (leaving a page).
    pub fn with_view(&self, view: View) -> Self {
        Route {
            view,
            page: None,
            ..self.clone()
        }
    }

    /// The history range the URL asks for, in unix ms (`until` `None`: until now);
    /// `None` for the live feed, or a `from` that does not parse.
    pub fn history_range(&self) -> Option<(u64, Option<u64>)> {
        let since = crate::format::parse_utc_ms(&self.from)?;
        let until = crate::format::parse_utc_ms(&self.to);
        Some((since, until))
    }

    /// Whether a task addressed to `to` is for the picked agents.
    pub fn picks_task_for(&self, to: &str) -> bool {
        self.agents.is_empty() || to.is_empty() || self.agents.iter().any(|a| a == to)
    }
}

/// Percent-encodes everything but unreserved characters and `,`.
pub use cortex_shared::url::encode_list as encode;

/// A path segment: [`encode`] and `,` too (a name is one segment).
pub fn encode_segment(text: &str) -> String {
    encode(text).replace(',', "%2C")
}

/// Undoes [`encode`] (and `+` as a space); malformed escapes are kept as they are.
pub use cortex_shared::url::decode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let route = Route {
            view: View::Dlq,
            page: None,
            agents: vec!["pink".into(), "harold".into()],
            priority: "high".into(),
            task_type: "coding".into(),
            search: "auth bug & more/é".into(),
            from: "2024-01-06T16:00:00Z".into(),
            to: "2024-01-06T17:00:00Z".into(),
            dlq: DlqFilterText {
                agent: "pink".into(),
                priority: "low".into(),
                task_type: "t".into(),
                error: "time out".into(),
                payload: "{\"a\"".into(),
            },
        };
        let hash = route.to_hash();
        assert!(hash.starts_with("#/dlq?agents=pink,harold&"), "{hash}");
        assert_eq!(Route::parse(&hash), route);
    }

    #[test]
    fn pages_of_a_task_an_agent_a_trace() {
        let page = Page::task("t/1 é", "cortex:tasks:high", "1704556800000-0");
        let hash = page.to_hash();
        assert_eq!(
            hash,
            "#/tasks/t%2F1%20%C3%A9?stream=cortex%3Atasks%3Ahigh&entry=1704556800000-0"
        );
        let route = Route::parse(&hash);
        assert_eq!(route.page, Some(page));
        assert_eq!(route.view, View::Tasks);
        let route = Route::parse("#/tasks/task-001");
        assert_eq!(route.page, Some(Page::task("task-001", "", "")));
        let route = Route::parse("#/agents/pink?agents=pink");
        assert_eq!(route.page, Some(Page::Agent("pink".into())));
        assert_eq!(route.view, View::Agents);
        assert_eq!(route.to_hash(), "#/agents/pink?agents=pink");
        assert_eq!(
            route.with_view(View::Tasks).to_hash(),
            "#/tasks?agents=pink"
        );
        let route = Route::parse("#/traces/c-1%2C2");
        assert_eq!(route.page, Some(Page::Trace("c-1,2".into())));
        assert_eq!(route.to_hash(), "#/traces/c-1%2C2");
        assert_eq!(Route::parse("#/tasks/").page, None);
        assert_eq!(Route::parse("#/dlq/x").page, None);
    }

    #[test]
    fn defaults_and_junk() {
        assert_eq!(Route::parse(""), Route::default());
        assert_eq!(Route::parse("#/"), Route::default());
        assert_eq!(Route::default().to_hash(), "#/tasks");
        let route = Route::parse("#/agents?agents=*&zzz=1&q=a+b%2&priority");
        assert_eq!(route.view, View::Agents);
        assert!(route.agents.is_empty());
        assert_eq!(route.search, "a b%2");
        assert_eq!(Route::parse("#/nowhere").view, View::Tasks);
    }

    #[test]
    fn the_history_range_comes_from_from_and_to() {
        let mut route = Route::parse("#/tasks?from=2024-01-06T16%3A00%3A00Z");
        assert_eq!(route.from, "2024-01-06T16:00:00Z");
        assert_eq!(route.history_range(), Some((1_704_556_800_000, None)));
        route.to = "2024-01-06 17:00".into();
        assert_eq!(
            route.history_range(),
            Some((1_704_556_800_000, Some(1_704_560_400_000)))
        );
        assert_eq!(Route::default().history_range(), None);
        route.from = "junk".into();
        assert_eq!(route.history_range(), None);
    }

    #[test]
    fn picks_tasks_for_the_agents() {
        let mut route = Route::default();
        assert!(route.picks_task_for("x"));
        route.agents = vec!["pink".into()];
        assert!(route.picks_task_for("pink") && route.picks_task_for(""));
        assert!(!route.picks_task_for("harold"));
    }
}
