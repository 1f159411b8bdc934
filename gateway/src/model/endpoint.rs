//! Webhook endpoints: what a tenant subscribes, and how each delivery to it is made.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::validation::{check_header, check_name, FieldError};
use crate::delivery::address_policy::UrlPolicy;
use crate::delivery::retry::RetryPolicy;

/// Longest attempt timeout a tenant may set, in ms; the queue lease is sized above it.
pub const MAX_TIMEOUT_MS: u64 = 30_000;
/// Most custom headers on one endpoint.
pub const MAX_HEADERS: usize = 50;
/// Most plugins in one endpoint's chain.
pub const MAX_PLUGINS: usize = 8;

/// HTTP methods an endpoint may be called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`: sent without a body.
    Get,
    /// `POST` (default).
    #[default]
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`: sent without a body.
    Delete,
}

impl HttpMethod {
    /// The method as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }

    /// Whether requests with this method carry the payload as a body.
    pub fn has_body(self) -> bool {
        !matches!(self, HttpMethod::Get | HttpMethod::Delete)
    }
}

/// How requests to an endpoint are signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(tag = "style", deny_unknown_fields)]
pub enum SignatureStyle {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    #[default]
    #[serde(rename = "standard")]
    Standard,
    /// A hex HMAC-SHA256 of the raw body in the named header (e.g. `x-gallabox-signature`),
    /// besides the Standard Webhooks headers.
    #[serde(rename = "hmac-sha256-hex")]
    HmacSha256Hex {
        /// Header that carries the hex digest.
        header: String,
    },
}

/// One plugin in an endpoint's chain, with its configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// Name of a built-in plugin or one the tenant uploaded.
    pub plugin: String,
    /// Configuration passed to the plugin on every call.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A secret that keeps signing after a rotation until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredSecret {
    /// The old `whsec_` secret.
    pub secret: String,
    /// Unix time in ms after which it no longer signs.
    pub expires_at_ms: u64,
}

/// An endpoint as stored, secrets included. Never serialized into API responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `ep_...`.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Free text for the tenant.
    pub description: String,
    /// Method of each delivery.
    pub method: HttpMethod,
    /// Exact event types or prefix wildcards (`Message.*`); empty means all.
    pub event_types: Vec<String>,
    /// Channels this endpoint wants; empty means all.
    pub channels: Vec<String>,
    /// Extra headers sent with each delivery.
    pub headers: BTreeMap<String, String>,
    /// The current signing secret (`whsec_...`).
    pub secret: String,
    /// Secrets replaced by a rotation that still sign until they expire.
    #[serde(default)]
    pub retired_secrets: Vec<RetiredSecret>,
    /// Signature style.
    pub signature: SignatureStyle,
    /// Retry schedule.
    pub retry: RetryPolicy,
    /// Whole-attempt timeout in ms.
    pub timeout_ms: u64,
    /// Most deliveries per second to this endpoint; bursts wait instead of failing.
    #[serde(default)]
    pub rate_limit_per_s: Option<u32>,
    /// `false` while paused: deliveries are held, not sent, and resume with the endpoint.
    pub active: bool,
    /// Plugin chain, run in order before signing.
    #[serde(default)]
    pub plugins: Vec<PluginRef>,
    /// Unix time in ms.
    pub created_at_ms: u64,
    /// Unix time in ms.
    pub updated_at_ms: u64,
    /// Why the gateway paused this endpoint by itself (a receiver answered 410 Gone);
    /// cleared on resume.
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Bumped by every write; a write based on an older revision is refused, so two
    /// concurrent read-modify-writes cannot silently undo each other.
    #[serde(default)]
    pub revision: u64,
}

impl Endpoint {
    /// Secrets that sign right now: the current one first, then unexpired retired ones.
    pub fn signing_secrets(&self, now_ms: u64) -> Vec<&str> {
        std::iter::once(self.secret.as_str())
            .chain(
                self.retired_secrets
                    .iter()
                    .filter(|s| s.expires_at_ms > now_ms)
                    .map(|s| s.secret.as_str()),
            )
            .collect()
    }
}

/// Body of `POST /v1/endpoints`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointCreate {
    /// Where deliveries go (`http` or `https`).
    pub url: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `POST` unless given.
    #[serde(default)]
    pub method: HttpMethod,
    /// Exact types or prefix wildcards such as `Message.*`; empty or absent means all.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Channels; an event that names a channel goes only to endpoints that list it or list none.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `whsec_` + base64; generated when absent.
    pub secret: Option<String>,
    /// Signature style; Standard Webhooks when absent.
    #[serde(default)]
    pub signature: SignatureStyle,
    /// Retry schedule; defaults when absent.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Whole-attempt timeout in ms (default 3000, at most 30000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Most deliveries per second (smoothed, not failed); none when absent.
    pub rate_limit_per_s: Option<u32>,
    /// Created paused when `false`.
    #[serde(default = "default_true")]
    pub active: bool,
    /// Plugin chain.
    #[serde(default)]
    pub plugins: Vec<PluginRef>,
}

fn default_timeout_ms() -> u64 {
    3_000
}

fn default_true() -> bool {
    true
}

/// Body of `PATCH /v1/endpoints/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    /// New url.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New method.
    pub method: Option<HttpMethod>,
    /// New event type filter.
    pub event_types: Option<Vec<String>>,
    /// New channel filter.
    pub channels: Option<Vec<String>>,
    /// New headers (replaces all).
    pub headers: Option<BTreeMap<String, String>>,
    /// New signature style.
    pub signature: Option<SignatureStyle>,
    /// New retry schedule.
    pub retry: Option<RetryPolicy>,
    /// New timeout.
    pub timeout_ms: Option<u64>,
    /// New rate limit; `0` removes it.
    pub rate_limit_per_s: Option<u32>,
    /// Pause (`false`) or resume (`true`).
    pub active: Option<bool>,
    /// New plugin chain (replaces all).
    pub plugins: Option<Vec<PluginRef>>,
}

/// An endpoint as the API shows it: everything but its secrets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointView {
    /// `ep_...`.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Free text.
    pub description: String,
    /// Method.
    pub method: HttpMethod,
    /// Event type filter.
    pub event_types: Vec<String>,
    /// Channel filter.
    pub channels: Vec<String>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Signature style.
    pub signature: SignatureStyle,
    /// Retry schedule.
    pub retry: RetryPolicy,
    /// Timeout in ms.
    pub timeout_ms: u64,
    /// Most deliveries per second.
    pub rate_limit_per_s: Option<u32>,
    /// `false` while paused.
    pub active: bool,
    /// Plugin chain; secret-looking config values are masked.
    pub plugins: Vec<PluginRef>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Set when the gateway paused the endpoint by itself (410 Gone), with why.
    pub disabled_reason: Option<String>,
}

impl EndpointCreate {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self, urls: &UrlPolicy<'_>) -> Result<(), FieldError> {
        urls.check("url", &self.url)?;
        if self.description.len() > 1024 {
            return Err(FieldError::new("description", "at most 1024 characters"));
        }
        check_event_types(&self.event_types)?;
        check_channels(&self.channels)?;
        check_headers(&self.headers)?;
        if let Some(secret) = &self.secret {
            crate::delivery::signing::decode_secret(secret)
                .map_err(|e| FieldError::new("secret", e.to_string()))?;
        }
        check_signature(&self.signature)?;
        self.retry.validate()?;
        check_timeout(self.timeout_ms)?;
        if let Some(rate) = self.rate_limit_per_s {
            check_rate(rate)?;
        }
        check_plugin_refs(&self.plugins)
    }
}

impl EndpointPatch {
    /// Puts the stored secret values back where the patch carries the mask the API showed
    /// (sensitive header values, secret plugin config values), so reading an endpoint and
    /// sending it back unchanged never replaces a credential with `********`.
    pub fn restore_masked(&mut self, current: &Endpoint) {
        use crate::delivery::redact::{unmask, MASK};
        if let Some(headers) = &mut self.headers {
            for (name, value) in headers.iter_mut() {
                if value == MASK {
                    if let Some(original) = current.headers.get(name) {
                        value.clone_from(original);
                    }
                }
            }
        }
        if let Some(plugins) = &mut self.plugins {
            for (new, old) in plugins.iter_mut().zip(&current.plugins) {
                if new.plugin == old.plugin {
                    unmask(&mut new.config, &old.config);
                }
            }
        }
    }

    /// Applies the patch to `endpoint` and checks the fields it touched.
    pub fn apply(self, endpoint: &mut Endpoint, urls: &UrlPolicy<'_>) -> Result<(), FieldError> {
        if let Some(url) = self.url {
            urls.check("url", &url)?;
            endpoint.url = url;
        }
        if let Some(description) = self.description {
            if description.len() > 1024 {
                return Err(FieldError::new("description", "at most 1024 characters"));
            }
            endpoint.description = description;
        }
        if let Some(method) = self.method {
            endpoint.method = method;
        }
        if let Some(types) = self.event_types {
            check_event_types(&types)?;
            endpoint.event_types = types;
        }
        if let Some(channels) = self.channels {
            check_channels(&channels)?;
            endpoint.channels = channels;
        }
        if let Some(headers) = self.headers {
            check_headers(&headers)?;
            endpoint.headers = headers;
        }
        if let Some(signature) = self.signature {
            check_signature(&signature)?;
            endpoint.signature = signature;
        }
        if let Some(retry) = self.retry {
            retry.validate()?;
            endpoint.retry = retry;
        }
        if let Some(timeout_ms) = self.timeout_ms {
            check_timeout(timeout_ms)?;
            endpoint.timeout_ms = timeout_ms;
        }
        if let Some(rate) = self.rate_limit_per_s {
            check_rate(rate)?;
            endpoint.rate_limit_per_s = (rate > 0).then_some(rate);
        }
        if let Some(active) = self.active {
            endpoint.active = active;
        }
        if let Some(plugins) = self.plugins {
            check_plugin_refs(&plugins)?;
            endpoint.plugins = plugins;
        }
        Ok(())
    }
}

fn check_event_types(types: &[String]) -> Result<(), FieldError> {
    if types.len() > 256 {
        return Err(FieldError::new("event_types", "at most 256 entries"));
    }
    for (i, pattern) in types.iter().enumerate() {
        let field = format!("event_types[{i}]");
        check_name(&field, pattern, 256)?;
        if pattern.find('*').is_some_and(|at| at != pattern.len() - 1) {
            return Err(FieldError::new(
                field,
                "`*` is only allowed at the end, as a prefix wildcard",
            ));
        }
    }
    Ok(())
}

fn check_channels(channels: &[String]) -> Result<(), FieldError> {
    if channels.len() > 256 {
        return Err(FieldError::new("channels", "at most 256 entries"));
    }
    for (i, channel) in channels.iter().enumerate() {
        check_name(&format!("channels[{i}]"), channel, 128)?;
    }
    Ok(())
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), FieldError> {
    if headers.len() > MAX_HEADERS {
        return Err(FieldError::new(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    for (name, value) in headers {
        check_header(&format!("headers.{name}"), name, value)?;
    }
    Ok(())
}

fn check_signature(signature: &SignatureStyle) -> Result<(), FieldError> {
    if let SignatureStyle::HmacSha256Hex { header } = signature {
        check_header("signature.header", header, "x")?;
    }
    Ok(())
}

fn check_timeout(timeout_ms: u64) -> Result<(), FieldError> {
    if !(100..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(FieldError::new(
            "timeout_ms",
            format!("must be between 100 and {MAX_TIMEOUT_MS}"),
        ));
    }
    Ok(())
}

fn check_rate(rate: u32) -> Result<(), FieldError> {
    if rate > 100_000 {
        return Err(FieldError::new("rate_limit_per_s", "at most 100000"));
    }
    Ok(())
}

fn check_plugin_refs(plugins: &[PluginRef]) -> Result<(), FieldError> {
    if plugins.len() > MAX_PLUGINS {
        return Err(FieldError::new(
            "plugins",
            format!("at most {MAX_PLUGINS} plugins"),
        ));
    }
    for (i, plugin) in plugins.iter().enumerate() {
        check_name(&format!("plugins[{i}].plugin"), &plugin.plugin, 64)?;
        if !plugin.config.is_object() {
            return Err(FieldError::new(
                format!("plugins[{i}].config"),
                "must be a JSON object",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
impl Endpoint {
    /// A plain active endpoint for unit tests; override fields with struct update syntax.
    pub(crate) fn sample(id: &str) -> Self {
        Endpoint {
            id: id.into(),
            url: "https://example.com/hook".into(),
            description: String::new(),
            method: HttpMethod::Post,
            event_types: vec![],
            channels: vec![],
            headers: BTreeMap::new(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            retired_secrets: vec![],
            signature: SignatureStyle::Standard,
            retry: RetryPolicy::default(),
            timeout_ms: 3000,
            rate_limit_per_s: None,
            active: true,
            plugins: vec![],
            created_at_ms: 0,
            updated_at_ms: 0,
            disabled_reason: None,
            revision: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::address_policy::AddressPolicy;

    fn create(json: Value) -> EndpointCreate {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let ep = create(serde_json::json!({"url": "https://example.com/hook"}));
        assert_eq!(ep.method, HttpMethod::Post);
        assert_eq!(ep.timeout_ms, 3000);
        assert_eq!(ep.retry.max_attempts, 6);
        assert_eq!(ep.signature, SignatureStyle::Standard);
        assert!(ep.active);
    }

    #[test]
    fn hex_signature_style_parses() {
        let ep = create(serde_json::json!({
            "url": "https://example.com",
            "signature": {"style": "hmac-sha256-hex", "header": "x-gallabox-signature"}
        }));
        assert_eq!(
            ep.signature,
            SignatureStyle::HmacSha256Hex {
                header: "x-gallabox-signature".into()
            }
        );
    }

    #[test]
    fn validation_names_the_field() {
        let policy = AddressPolicy::new(vec![]);
        let urls = UrlPolicy {
            addresses: &policy,
            https_only: false,
        };
        let cases = [
            (serde_json::json!({"url": "ftp://example.com"}), "url"),
            (
                serde_json::json!({"url": "https://example.com", "event_types": ["Mess*age"]}),
                "event_types[0]",
            ),
            (
                serde_json::json!({"url": "https://example.com", "timeout_ms": 60000}),
                "timeout_ms",
            ),
            (
                serde_json::json!({"url": "https://example.com", "secret": "nope"}),
                "secret",
            ),
            (
                serde_json::json!({"url": "https://example.com", "headers": {"Host": "x"}}),
                "headers.Host",
            ),
            (
                serde_json::json!({"url": "https://example.com", "retry": {"max_attempts": 0}}),
                "retry.max_attempts",
            ),
        ];
        for (json, field) in cases {
            let err = create(json.clone()).validate(&urls).unwrap_err();
            assert_eq!(err.field, field, "{json}");
        }
    }

    #[test]
    fn retired_secrets_sign_until_they_expire() {
        let mut ep = Endpoint {
            secret: "whsec_new".into(),
            retired_secrets: vec![RetiredSecret {
                secret: "whsec_old".into(),
                expires_at_ms: 1_000,
            }],
            ..Endpoint::sample("ep_1")
        };
        assert_eq!(ep.signing_secrets(999), vec!["whsec_new", "whsec_old"]);
        assert_eq!(ep.signing_secrets(1_000), vec!["whsec_new"]);
        ep.retired_secrets.clear();
        assert_eq!(ep.signing_secrets(0), vec!["whsec_new"]);
    }
}
