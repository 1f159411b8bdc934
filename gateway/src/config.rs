//! Typed configuration, loaded once at startup and validated before anything runs.
//!
//! Sources, later ones winning: built-in defaults, then an optional TOML file
//! (`--config path`), then `GATEWAY_*` environment variables (nested sections
//! with a double underscore, e.g. `GATEWAY_PLUGINS__FUEL`). An invalid value
//! stops startup with a message that names the setting.

use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::plugins::PluginLimits;

/// Everything the gateway can be told at startup.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on (`GATEWAY_LISTEN`).
    pub listen: SocketAddr,
    /// Redis connection url (`GATEWAY_REDIS_URL`).
    pub redis_url: String,
    /// Prefix of every Redis key, so several gateways or test runs can share one Redis (`GATEWAY_REDIS_PREFIX`).
    pub redis_prefix: String,
    /// Operator token for `POST /v1/tenants`; generated and printed once when unset (`GATEWAY_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Networks exempt from the non-public address block, e.g. `127.0.0.0/8` for local development
    /// (`GATEWAY_ALLOWED_NETWORKS`, comma-separated CIDRs).
    #[serde(deserialize_with = "networks")]
    pub allowed_networks: Vec<IpNet>,
    /// Host names pinned to addresses ahead of DNS, like curl's `--resolve` (`[dns_overrides]`
    /// table in TOML). Pinned addresses pass the same non-public address check as resolved ones.
    pub dns_overrides: std::collections::HashMap<String, Vec<std::net::IpAddr>>,
    /// Refuse plain-`http` endpoint urls (`GATEWAY_HTTPS_ONLY`).
    pub https_only: bool,
    /// Serve the HTTP API in this process (`GATEWAY_API_ENABLED`).
    pub api_enabled: bool,
    /// Run delivery workers in this process (`GATEWAY_WORKERS_ENABLED`).
    pub workers_enabled: bool,
    /// Deliveries in flight at once in this process (`GATEWAY_WORKER_CONCURRENCY`).
    pub worker_concurrency: usize,
    /// Most deliveries to one endpoint in flight at once per process, so a slow receiver
    /// cannot take the whole pool (`GATEWAY_ENDPOINT_CONCURRENCY`).
    pub endpoint_concurrency: usize,
    /// Number of queue shards (hash tags). Fixed for the life of the data: a tenant's keys live in one shard.
    pub shards: u16,
    /// How long a taken job stays leased before another worker may take it over, in ms.
    /// Must exceed the longest delivery attempt (endpoint `timeout_ms` is at most 30 s).
    pub lease_ms: u64,
    /// A job taken over this many times without an outcome (it keeps crashing its
    /// worker) goes to the dead-letter set instead (`GATEWAY_MAX_LEASES`).
    pub max_leases: u64,
    /// Days that events and delivery logs are kept (`GATEWAY_RETENTION_DAYS`).
    pub retention_days: u32,
    /// Retention in seconds; overrides `retention_days` when set (short-lived and test deployments).
    pub retention_secs: Option<u64>,
    /// An endpoint whose every attempt has failed for this long (ms) is paused and the
    /// tenant told (`GATEWAY_DISABLE_AFTER_FAILING_MS`, default 5 days).
    pub disable_after_failing_ms: u64,
    /// Events per second a tenant may send when its own settings name no limit; unset
    /// means unlimited (`GATEWAY_DEFAULT_RATE_LIMIT_PER_S`).
    pub default_rate_limit_per_s: Option<u32>,
    /// Largest accepted request body in bytes; larger is a 413 (`GATEWAY_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// `text` or `json` log lines (`GATEWAY_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Limits applied to every plugin call (`[plugins]` section).
    pub plugins: PluginLimits,
    /// How new events are stored: `string` (default) or `hash`, the form gateways before
    /// commit 2ae6182 read; set `hash` while such gateways still run (`GATEWAY_EVENT_FORMAT`;
    /// README, "Upgrading").
    pub event_format: crate::store::event_record::EventFormat,
}

/// Shape of the log lines written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "gw".into(),
            admin_token: None,
            allowed_networks: Vec::new(),
            dns_overrides: Default::default(),
            https_only: false,
            api_enabled: true,
            workers_enabled: true,
            worker_concurrency: 512,
            endpoint_concurrency: 128,
            shards: 1,
            lease_ms: 60_000,
            max_leases: 5,
            retention_days: 30,
            retention_secs: None,
            max_body_bytes: 1024 * 1024,
            default_rate_limit_per_s: None,
            disable_after_failing_ms: 5 * 86_400 * 1000,
            log_format: LogFormat::Text,
            plugins: PluginLimits::default(),
            event_format: Default::default(),
        }
    }
}

/// A configuration that could not be loaded or failed validation.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or parsed.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is out of range; the message names the setting.
    #[error("configuration: {setting}: {message}")]
    Invalid {
        /// The setting's name as written in TOML.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl Config {
    /// Loads defaults, then `file` if given, then `GATEWAY_*` variables, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("GATEWAY_").split("__"));
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// How long events and logs are kept, in seconds.
    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.retention_secs
                .unwrap_or(u64::from(self.retention_days) * 86_400),
        )
    }

    /// Checks every value that has a range, naming the first one that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, message: &str| {
            Err(ConfigError::Invalid {
                setting,
                message: message.to_string(),
            })
        };
        if redis::Client::open(self.redis_url.as_str()).is_err() {
            return invalid("redis_url", "not a valid redis:// url");
        }
        if self.redis_prefix.is_empty()
            || !self
                .redis_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return invalid(
                "redis_prefix",
                "must be non-empty and use only letters, digits, '-', '_', '.', ':'",
            );
        }
        if let Some(token) = &self.admin_token {
            if token.len() < 16 {
                return invalid("admin_token", "must be at least 16 characters");
            }
        }
        if !(1..=65_536).contains(&self.worker_concurrency) {
            return invalid("worker_concurrency", "must be between 1 and 65536");
        }
        if self.endpoint_concurrency == 0 {
            return invalid("endpoint_concurrency", "must be at least 1");
        }
        if !(1..=1024).contains(&self.shards) {
            return invalid("shards", "must be between 1 and 1024");
        }
        if self.lease_ms < 1_000 {
            return invalid("lease_ms", "must be at least 1000");
        }
        if !(1..=1000).contains(&self.max_leases) {
            return invalid("max_leases", "must be between 1 and 1000");
        }
        if self.retention_secs == Some(0) {
            return invalid("retention_secs", "must be at least 1");
        }
        if self.retention_days == 0 {
            return invalid("retention_days", "must be at least 1");
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return invalid("max_body_bytes", "must be between 1 KiB and 64 MiB");
        }
        Ok(())
    }
}

/// Accepts a list of CIDRs or one comma-separated string (the form environment variables take).
fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Networks {
        List(Vec<String>),
        Text(String),
    }
    let items = match Networks::deserialize(deserializer)? {
        Networks::List(items) => items,
        Networks::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("allowed_networks: `{s}` is not a CIDR"))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default()
            .validate()
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn networks_accept_a_comma_list() {
        let config: Config = Figment::new()
            .merge(Toml::string("allowed_networks = \"127.0.0.0/8, ::1\""))
            .extract()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.allowed_networks.len(), 2);
        assert_eq!(config.allowed_networks[1].to_string(), "::1/128");
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let config = Config {
            shards: 0,
            ..Config::default()
        };
        let message = config.validate().map(|_| ()).unwrap_err().to_string();
        assert!(message.contains("shards"), "{message}");
        let bad = Figment::new()
            .merge(Toml::string("allowed_networks = [\"nonsense\"]"))
            .extract::<Config>();
        assert!(bad.is_err());
    }
}
