//! One delivery attempt, from the endpoint's base request to the receiver's answer:
//! plugins, signing, sending, and the attempt record. Used by the worker and by
//! `POST /v1/endpoints/{id}/test`; it touches no queue state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info_span, Instrument};

use super::client::{DeliveryClient, Outgoing, MAX_RESPONSE_EXCERPT};
use super::redact;
use super::request::{base_request, sign};
use super::retry::AttemptResult;
use crate::model::endpoint::Endpoint;
use crate::model::log::{Attempt, SentRequest};
use crate::plugins::{PluginAction, PluginEvent, PluginRequest};
use crate::store::plugins::PluginDirectory;
use crate::store::time::{now_ms, rfc3339};

/// What a delivery needs besides the job: the HTTP client and the plugins.
#[derive(Clone)]
pub struct DeliveryContext {
    /// SSRF-safe client.
    pub client: DeliveryClient,
    /// Plugin names → loaded plugins.
    pub plugins: PluginDirectory,
    /// Metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Sent (or tried to): the receiver's result decides what comes next.
    Sent(AttemptResult),
    /// A plugin dropped the event.
    Dropped(String),
    /// A plugin failed (code `plugin_*`); nothing was sent.
    PluginFailed {
        /// Stable code.
        code: &'static str,
        /// Detail.
        message: String,
    },
}

/// The attempt's outcome and what to store about it.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    /// How it ended.
    pub verdict: Verdict,
    /// The attempt record (absent when a plugin dropped the event).
    pub attempt: Option<Attempt>,
    /// The request as sent, secrets masked (absent when nothing was sent).
    pub request: Option<SentRequest>,
}

impl AttemptReport {
    /// Error text for the log's `last_error`.
    pub fn last_error(&self) -> Option<String> {
        match &self.verdict {
            Verdict::Dropped(reason) => Some(reason.clone()),
            _ => self.attempt.as_ref().and_then(|a| a.error.clone()),
        }
    }
}

/// Runs plugins, signs, sends. `msg_id` is the delivery's `webhook-id`.
pub async fn attempt(
    ctx: &DeliveryContext,
    endpoint: &Endpoint,
    event: &PluginEvent,
    msg_id: &str,
) -> AttemptReport {
    let started_ms = now_ms();
    let span = info_span!("attempt", msg = %msg_id, event = %event.id, endpoint = %endpoint.id);
    async {
        let base = base_request(endpoint, &event.payload);
        let mut request = match run_chain(ctx, endpoint, event, base).await {
            Ok(PluginAction::Deliver(r)) => from_plugin(r),
            Ok(PluginAction::Drop(reason)) => {
                return AttemptReport { verdict: Verdict::Dropped(reason), attempt: None, request: None };
            }
            Err((code, message)) => {
                let attempt = Attempt {
                    at: rfc3339(started_ms),
                    status_code: None,
                    latency_ms: now_ms().saturating_sub(started_ms),
                    response: None,
                    error_code: Some(code.to_string()),
                    error: Some(message.clone()),
                };
                return AttemptReport { verdict: Verdict::PluginFailed { code, message }, attempt: Some(attempt), request: None };
            }
        };
        let now = now_ms();
        let secrets = endpoint.signing_secrets(now);
        sign(&mut request, &endpoint.signature, &secrets, msg_id, i64::try_from(now / 1000).unwrap_or(0));
        let plugin_secrets = endpoint.plugins.iter().flat_map(|p| redact::config_secrets(&p.config));
        let hidden = redact::Secrets::new(secrets.iter().map(|s| s.to_string()).chain(plugin_secrets));
        let sent = redact::sent_request(&request, &hidden);
        let clock = Instant::now();
        let answer = ctx.client.send(&request, Duration::from_millis(endpoint.timeout_ms)).await;
        let latency_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        ctx.metrics.attempt_seconds.observe(clock.elapsed().as_secs_f64());
        let (result, attempt) = match answer {
            Ok(answer) => {
                let ok = (200..300).contains(&answer.status);
                let result = if ok {
                    AttemptResult::Success
                } else {
                    AttemptResult::Status { code: answer.status, retry_after_ms: answer.retry_after_ms }
                };
                let attempt = Attempt {
                    at: rfc3339(started_ms),
                    status_code: Some(answer.status),
                    latency_ms,
                    response: Some(redact::stored_text(&answer.excerpt, MAX_RESPONSE_EXCERPT, &hidden)),
                    error_code: (!ok).then(|| "http_status".to_string()),
                    error: (!ok).then(|| format!("receiver answered {}", answer.status)),
                };
                (result, attempt)
            }
            Err(error) => {
                let attempt = Attempt {
                    at: rfc3339(started_ms),
                    status_code: None,
                    latency_ms,
                    response: None,
                    error_code: Some(error.code().to_string()),
                    error: Some(redact::scrub(&error.to_string(), &hidden)),
                };
                (AttemptResult::NoAnswer, attempt)
            }
        };
        debug!(status = ?attempt.status_code, latency_ms, error = ?attempt.error_code, "attempt finished");
        AttemptReport { verdict: Verdict::Sent(result), attempt: Some(attempt), request: Some(sent) }
    }
    .instrument(span)
    .await
}

/// Runs the endpoint's plugins in order; each sees the request the previous one returned.
async fn run_chain(
    ctx: &DeliveryContext,
    endpoint: &Endpoint,
    event: &PluginEvent,
    base: Outgoing,
) -> Result<PluginAction, (&'static str, String)> {
    let mut request = to_plugin(base);
    if endpoint.plugins.is_empty() {
        return Ok(PluginAction::Deliver(request));
    }
    for plugin_ref in &endpoint.plugins {
        let plugin = ctx
            .plugins
            .resolve(&event.tenant, &plugin_ref.plugin)
            .await
            .map_err(|e| {
                let code = match e {
                    // Gone (deleted while in use): final for this delivery.
                    crate::store::plugins::PluginStoreError::Unknown(_) => "plugin_missing",
                    _ => super::worker::PLUGIN_UNAVAILABLE,
                };
                (code, format!("{}: {e}", plugin_ref.plugin))
            })?;
        let config = plugin_ref.config.to_string();
        let input = request;
        let outcome = ctx
            .plugins
            .call(|engine| async move { engine.invoke(&plugin, event, input, &config).await })
            .await
            .and_then(|r| r);
        let metrics = &ctx.metrics;
        match outcome {
            Ok(invocation) => {
                metrics
                    .plugin_seconds
                    .observe(invocation.duration.as_secs_f64());
                match invocation.action {
                    PluginAction::Deliver(next) => {
                        metrics.plugin_calls.with_label_values(&["ok"]).inc();
                        request = next;
                    }
                    drop @ PluginAction::Drop(_) => {
                        metrics.plugin_calls.with_label_values(&["drop"]).inc();
                        return Ok(drop);
                    }
                }
            }
            Err(e) => {
                metrics.plugin_calls.with_label_values(&[e.code()]).inc();
                tracing::info!(plugin = %plugin_ref.plugin, code = e.code(), error = %e, "plugin failed");
                return Err((e.code(), format!("{}: {e}", plugin_ref.plugin)));
            }
        }
    }
    Ok(PluginAction::Deliver(request))
}

fn to_plugin(request: Outgoing) -> PluginRequest {
    PluginRequest {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body.to_vec(),
    }
}

fn from_plugin(request: PluginRequest) -> Outgoing {
    Outgoing {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: Bytes::from(request.body),
    }
}
