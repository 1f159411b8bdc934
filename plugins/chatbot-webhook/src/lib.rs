//! Built-in plugin `chatbot-webhook` ("Custom Webhook"): sends chatbot
//! events to a tenant's own service the way the seed's Custom Webhook
//! integration does: query params, auth, headers and body fields chosen as
//! `{key, value, type}` lists, and only for the connected channels.
//!
//! - [`config`]: the config, checked once, errors naming their field;
//! - [`chat`]: the default chatbot body (`chatId`, `contact`, `event`,
//!   `text`, `multimedia.*`) and the connections an event came through;
//! - [`nest`]: dotted / `[]` body keys;
//! - this file: the order the request is built in ([`build`]).
//!
//! The config reference is in this crate's `README.md`.

pub mod chat;
pub mod config;
pub mod nest;

use plugin_sdk::has_line_break;
use plugin_sdk::{value_to_text, Action, Error, Event, Plugin, Request, Value};

use crate::config::{ApiKeyIn, Auth, Config, Source};

/// The plugin.
pub struct ChatbotWebhook;

impl Plugin for ChatbotWebhook {
    fn validate_config(config: &Value) -> Result<(), Error> {
        Config::parse(config).map(|_| ())
    }

    fn transform(event: Event, request: Request, config: &Value) -> Result<Action, Error> {
        let config = Config::parse(config)?;
        if let Some(reason) = channel_filter(&event, &config) {
            return Ok(Action::Drop(reason));
        }
        build(&event, request, &config).map(Action::Deliver)
    }
}

plugin_sdk::export_plugin!(ChatbotWebhook);

/// The drop reason when `channels` is set and the event came through none
/// of them (compared case-insensitively).
pub fn channel_filter(event: &Event, config: &Config) -> Option<String> {
    if config.channels.is_empty() {
        return None;
    }
    let connections = chat::connections(event);
    let connected = config
        .channels
        .iter()
        .any(|c| connections.contains(&c.to_ascii_lowercase()));
    if connected {
        return None;
    }
    let name = config.alias.as_deref().unwrap_or("chatbot-webhook");
    let from = if connections.is_empty() {
        "no channel".to_owned()
    } else {
        connections.join(", ")
    };
    Some(format!(
        "{name}: event came through {from}, not a connected channel ({})",
        config.channels.join(", ")
    ))
}

/// Builds the request: url and method, query params (then an API key in the
/// query), JSON body, headers, then the auth header (so auth wins).
pub fn build(event: &Event, mut request: Request, config: &Config) -> Result<Request, Error> {
    let defaults = chat::default_body(event);
    let resolve = |source: &Source| match source {
        Source::Text(text) => Some(Value::String(text.clone())),
        Source::Variable(path) => chat::lookup(event, &defaults, path),
    };
    let text = |source: &Source| {
        resolve(source)
            .map(|v| value_to_text(&v))
            .unwrap_or_default()
    };

    if let Some(url) = &config.url {
        request.url.clone_from(url);
    }
    if let Some(method) = &config.method {
        request.method.clone_from(method);
    }

    let mut query: Vec<(String, String)> = config
        .params
        .iter()
        .map(|field| (field.key.clone(), text(&field.source)))
        .collect();
    if let Auth::ApiKey {
        key,
        value,
        place: ApiKeyIn::Query,
    } = &config.auth
    {
        query.push((key.clone(), value.clone()));
    }
    request.append_query(query);

    if request.method.eq_ignore_ascii_case("GET") {
        request.clear_body();
    } else {
        let body = match &config.body {
            None => defaults.clone(),
            Some(fields) => {
                let mut body = Value::Object(Default::default());
                for (i, (key, source)) in fields.iter().enumerate() {
                    let value = resolve(source).unwrap_or(Value::Null);
                    nest::insert(&mut body, key, value)
                        .map_err(|e| e.in_field(format!("body[{i}].key")))?;
                }
                body
            }
        };
        request.set_json_body(&body);
    }

    for (i, field) in config.headers.iter().enumerate() {
        let value = text(&field.source);
        if has_line_break(&value) {
            return Err(Error::field(
                format!("headers[{i}].value"),
                "would contain a line break",
            ));
        }
        request.set_header(&field.key, value);
    }
    set_auth(&mut request, &config.auth);
    Ok(request)
}

/// Adds the auth header, if the auth style uses one.
fn set_auth(request: &mut Request, auth: &Auth) {
    match auth {
        Auth::None
        | Auth::ApiKey {
            place: ApiKeyIn::Query,
            ..
        } => {}
        Auth::ApiKey { key, value, .. } => request.set_header(key, value),
        Auth::Basic { username, password } => {
            let credentials = base64(format!("{username}:{password}").as_bytes());
            request.set_header("Authorization", format!("Basic {credentials}"));
        }
        Auth::Bearer { token } => request.set_header("Authorization", format!("Bearer {token}")),
    }
}

/// Standard base64 with padding (RFC 4648), for Basic auth. Eight lines here
/// instead of a dependency in every plugin build.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
