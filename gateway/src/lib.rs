//! Programmable webhook gateway.
//!
//! Tenants post events; the gateway stores each one durably in Redis, fans it
//! out to the tenant's matching endpoints, runs each endpoint's WebAssembly
//! plugins, signs the final request and delivers it with retries, keeping a
//! queryable log of every delivery and attempt.
//!
//! Map of the crate, one line per module:
//! - [`config`]: typed configuration (defaults → TOML file → `GATEWAY_*` env), validated once.
//! - [`failpoint`]: named crash points for tests (cargo feature `failpoints`).
//! - [`ids`]: prefixed, time-ordered identifiers (`ten_`, `ep_`, `evt_`, `msg_`, `key_`).
//! - [`metrics`]: Prometheus counters and histograms behind `GET /metrics`.
//! - [`model`]: the resources (tenant, endpoint, event, delivery log) and their validation.
//! - [`matching`]: which endpoints an event goes to (pure).
//! - [`store`]: tenants, endpoints, events, logs and plugins in Redis; the key layout.
//! - [`queue`]: durable delivery jobs on Redis streams: ready, leased, delayed, held, dead.
//! - [`delivery`]: signing, retry policy, SSRF-safe HTTP client, the worker loop.
//! - [`plugins`]: the wasmtime host for tenant and built-in WebAssembly plugins.
//! - [`api`]: the axum HTTP API under `/v1`, auth, errors and the OpenAPI document.
//! - [`cli`]: the command line: config file, logging, signals.
//! - [`app`]: wiring: builds the shared state and runs the API and workers until shutdown.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod failpoint;
pub mod ids;
pub mod matching;
pub mod metrics;
pub mod model;
pub mod plugins;
pub mod queue;
pub mod store;

pub use app::run;
pub use config::Config;
