//! The end-to-end tests, one target with a module per feature (so the harness,
//! `cortex-e2e` in `tests/src/`, links once): real redis-server, the relay binary,
//! headless Chromium, all on loopback. `cargo xtask test` runs them with the rest;
//! `cargo xtask test -- -p cortex-e2e --test e2e <module>::` runs one feature's.
//! ARCHITECTURE.md, "Tests", says what each covers.

mod api_bench;
mod api_common;
mod api_contract;
mod api_dlq;
mod api_live;
mod api_streams;
mod bad_entries;
mod chaos;
mod cli;
mod consume;
mod consumer_cleanup;
mod cross_site;
mod dashboard;
mod dashboard_dlq;
mod dashboard_history;
mod dashboard_layout;
mod dashboard_lifecycle;
mod dashboard_load;
mod dashboard_login;
mod dashboard_payload;
mod dashboard_reconnect;
mod dashboard_served;
mod dashboard_streams;
mod dashboard_views;
mod dlq_failed_agent;
mod embed;
mod faults;
mod fuzz;
mod lifecycle_record;
mod limits;
mod operator_binary;
mod resume;
mod security;
mod service;
mod task_api;
mod task_api_bench;
mod trim;
mod watch;
