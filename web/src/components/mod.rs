//! Components, one per file; each takes `XxxProps` and reports through `on*` callbacks.

mod agent_picker;
mod dashboard;
mod error_banner;
mod gap_item;
mod header;
mod heartbeat_panel;
mod relay_provider;
mod task_feed;
mod task_item;

pub use agent_picker::{AgentPicker, AgentPickerProps};
pub use dashboard::Dashboard;
pub use error_banner::{ErrorBanner, ErrorBannerProps};
pub use gap_item::{GapItem, GapItemProps};
pub use header::{Header, HeaderProps};
pub use heartbeat_panel::{HeartbeatPanel, HeartbeatPanelProps};
pub use relay_provider::{RelayProvider, RelayProviderProps};
pub use task_feed::{TaskFeed, TaskFeedProps};
pub use task_item::{TaskItem, TaskItemProps};
