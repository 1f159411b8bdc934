//! Built-in plugin `compose-template` ("Compose Webhook"): builds the request
//! a receiver gets from templates with `@{{path}}` variables, so the tenant
//! chooses the url, method, headers and body instead of the raw event.
//!
//! - [`config`]: the config, checked once, errors naming their field;
//! - [`config_text`]: the same config read straight from its text (what a
//!   delivery does);
//! - [`template`]: `@{{path}}` parsing and rendering (url, text, JSON);
//! - this file: the order the request is built in ([`compose`]).
//!
//! The config reference is in this crate's `README.md`.

pub mod config;
pub mod config_text;
pub mod template;

use plugin_sdk::has_line_break;
use plugin_sdk::{discard, value_to_text, Action, Error, Event, Lookup, Plugin};
use plugin_sdk::{RawEvent, Request, Value};

use crate::config::{BodyFormat, BodyTemplate, Config, FieldPath};
use crate::template::{write_json_str, write_json_value, Stop, Vars};

/// The plugin.
pub struct ComposeTemplate;

impl Plugin for ComposeTemplate {
    fn validate_config(config: &Value) -> Result<(), Error> {
        Config::parse(config).map(|_| ())
    }

    fn transform(event: Event, request: Request, config: &Value) -> Result<Action, Error> {
        let config = Config::parse(config)?;
        action(compose(&event, request, &config))
    }

    /// What a delivery runs: the payload is read lazily (a template reads a few
    /// fields; parsing all of it was a third of a call's work) and the config
    /// straight from its text ([`config_text`]), with the same result as
    /// [`ComposeTemplate::transform`] (tested), but that the payload or a
    /// top-level field of it copied whole into a JSON body keeps the sender's
    /// spelling (numbers, escapes, repeated keys; see the crate's README): the
    /// same JSON to a reader that takes the last of repeated keys, not always the
    /// same bytes.
    fn transform_raw(event: RawEvent<'_>, request: Request, config: &str) -> Result<Action, Error> {
        let event = event.lazy()?;
        let config = Config::from_text(config)?;
        let action = action(compose(&event, request, &config));
        discard(config);
        action
    }
}

/// The plugin's answer for a composed request, or where composing stopped.
fn action(composed: Result<Request, Stop>) -> Result<Action, Error> {
    match composed {
        Ok(request) => Ok(Action::Deliver(request)),
        Err(Stop::Drop(reason)) => Ok(Action::Drop(reason)),
        Err(Stop::Fail(error)) => Err(error),
    }
}

plugin_sdk::export_plugin!(ComposeTemplate);

/// Builds the request: url, then method, then body (which sets the content
/// type), then the config's headers (which may override it).
pub fn compose(event: &dyn Lookup, mut request: Request, config: &Config) -> Result<Request, Stop> {
    let vars = Vars::new(event, config.on_missing);
    if let Some(url) = &config.url {
        request.url = url.render_url(&vars).map_err(at(FieldPath::Root("url")))?;
    }
    if let Some(method) = &config.method {
        request.method.clone_from(method);
    }
    if request.method.eq_ignore_ascii_case("GET") {
        request.clear_body();
    } else {
        set_body(&mut request, config, &vars)?;
    }
    for (name, template) in &config.headers {
        let field = FieldPath::Key(&FieldPath::Root("headers"), name);
        let value = template.render_text(&vars).map_err(at(field))?;
        if has_line_break(&value) {
            return Err(Stop::Fail(Error::field(
                field,
                "value would contain a line break",
            )));
        }
        request.set_header(name, value);
    }
    Ok(request)
}

/// Renders the body template, or re-encodes the request's own JSON body as a
/// form when there is no template and the format is `form`.
fn set_body(request: &mut Request, config: &Config, vars: &Vars<'_>) -> Result<(), Stop> {
    let body = match (&config.body, config.body_format) {
        (Some(template), BodyFormat::Json) => {
            // Straight to JSON text: the values the template takes from the event are
            // serialized where they are, not copied into a tree first.
            let mut body = Vec::with_capacity(request.body.len());
            write_body(FieldPath::Root("body"), template, vars, &mut body)?;
            request.body = body;
            request.set_header("content-type", "application/json");
            return Ok(());
        }
        (Some(template), BodyFormat::Form) => render_body(FieldPath::Root("body"), template, vars)?,
        (None, BodyFormat::Json) => return Ok(()),
        (None, BodyFormat::Form) => request
            .json_body()
            .map_err(|e| Stop::Fail(e.in_field("body")))?,
    };
    request.set_form_body(form_pairs(&body)?);
    Ok(())
}

/// Writes a body template as JSON text, the same text [`render_body`]'s value
/// serializes to, except for values copied from the payload's text
/// ([`Template::write_json`]); `field` locates errors as there.
fn write_body(
    field: FieldPath<'_>,
    template: &BodyTemplate,
    vars: &Vars<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Stop> {
    match template {
        BodyTemplate::Text(text) => text.write_json(vars, out).map_err(at(field))?,
        BodyTemplate::Literal(value) => write_json_value(out, value),
        BodyTemplate::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_body(FieldPath::Index(&field, i), item, vars, out)?;
            }
            out.push(b']');
        }
        BodyTemplate::Object(fields) => {
            out.push(b'{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, key);
                out.push(b':');
                write_body(FieldPath::Key(&field, key), item, vars, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Renders a body template to JSON; `field` locates errors (`body.items.0`).
fn render_body(
    field: FieldPath<'_>,
    template: &BodyTemplate,
    vars: &Vars<'_>,
) -> Result<Value, Stop> {
    Ok(match template {
        BodyTemplate::Text(text) => text.render_json(vars).map_err(at(field))?,
        BodyTemplate::Literal(value) => value.clone(),
        BodyTemplate::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| render_body(FieldPath::Index(&field, i), item, vars))
                .collect::<Result<_, _>>()?,
        ),
        BodyTemplate::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, item)| {
                    Ok((
                        key.clone(),
                        render_body(FieldPath::Key(&field, key), item, vars)?,
                    ))
                })
                .collect::<Result<_, Stop>>()?,
        ),
    })
}

/// Form fields from a JSON object: strings as they are, `null` as empty,
/// other values (numbers, nested objects) as their JSON text.
fn form_pairs(body: &Value) -> Result<Vec<(String, String)>, Stop> {
    match body {
        Value::Null => Ok(Vec::new()),
        Value::Object(fields) => Ok(fields
            .iter()
            .map(|(key, value)| (key.clone(), value_to_text(value)))
            .collect()),
        _ => Err(Stop::Fail(Error::field(
            "body",
            "form format needs a JSON object body",
        ))),
    }
}

/// Prefixes a stop's message with the config field it came from.
fn at(field: FieldPath<'_>) -> impl Fn(Stop) -> Stop + '_ {
    move |stop| match stop {
        Stop::Drop(reason) => Stop::Drop(format!("{field}: {reason}")),
        Stop::Fail(error) => Stop::Fail(error.in_field(field)),
    }
}

#[cfg(test)]
mod tests;
