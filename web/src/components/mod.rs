//! Components, one per file; each takes `XxxProps` and reports through `on*` callbacks.

mod agent_page;
mod agent_picker;
mod agents_view;
mod confirm_dialog;
mod dashboard;
mod dlq_view;
mod error_banner;
mod gap_item;
mod header;
mod heartbeat_panel;
mod login_form;
mod payload_viewer;
mod publish_form;
mod relay_provider;
mod streams_view;
mod task_feed;
mod task_item;
mod task_page;
mod task_states;
mod tasks_view;
mod throughput_chart;
mod timeline;
mod trace_page;

pub use agent_page::{AgentPage, AgentPageProps};
pub use agent_picker::{AgentPicker, AgentPickerProps};
pub use agents_view::{AgentsView, AgentsViewProps};
pub use confirm_dialog::{ConfirmDialog, ConfirmDialogProps};
pub use dashboard::Dashboard;
pub use dlq_view::{DlqView, DlqViewProps};
pub use error_banner::{ErrorBanner, ErrorBannerProps};
pub use gap_item::{GapItem, GapItemProps};
pub use header::{Header, HeaderProps};
pub use heartbeat_panel::{HeartbeatPanel, HeartbeatPanelProps};
pub use login_form::{LoginForm, LoginFormProps};
pub use payload_viewer::{PayloadViewer, PayloadViewerProps};
pub use publish_form::{build_request, PublishForm, PublishFormProps};
pub use relay_provider::{RelayProvider, RelayProviderProps};
pub use streams_view::{StreamsView, StreamsViewProps};
pub use task_feed::{TaskFeed, TaskFeedProps};
pub use task_item::{TaskItem, TaskItemProps};
pub use task_page::{TaskPage, TaskPageProps};
pub use task_states::{TaskStates, TaskStatesProps};
pub use tasks_view::{
    history_range_text, row_matches, HistoryForm, HistoryFormProps, TasksView, TasksViewProps,
};
pub use throughput_chart::{ThroughputChart, ThroughputChartProps};
pub use timeline::{lanes, Lane, Mark, Span, Timeline, TimelineProps};
pub use trace_page::{TracePage, TracePageProps};
