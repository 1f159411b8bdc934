//! Example gateway plugin: drops events whose `payload.status` is in a
//! configured list, and tags every delivered request with a header.
//!
//! Config:
//!
//! ```json
//! {"drop_statuses": ["read", "deleted"], "header": "x-status"}
//! ```
//!
//! - `drop_statuses` (list of strings, default empty): statuses to drop.
//! - `header` (string, default `x-status`): header that carries the event's
//!   status on delivered requests (left out when the payload has none).
//!
//! Copy this crate to start your own plugin; see `plugin-sdk/README.md`.

use plugin_sdk::{Action, Error, Event, Plugin, Request, Value};

/// The plugin. A unit struct: plugins keep no state between events.
pub struct StatusFilter;

impl Plugin for StatusFilter {
    fn validate_config(config: &Value) -> Result<(), Error> {
        Config::parse(config).map(|_| ())
    }

    fn transform(event: Event, mut request: Request, config: &Value) -> Result<Action, Error> {
        let config = Config::parse(config)?;
        let Some(status) = event.lookup_text("payload.status") else {
            return Ok(Action::Deliver(request));
        };
        if config.drop_statuses.contains(&status) {
            return Ok(Action::drop(format!("status `{status}` is filtered out")));
        }
        request.set_header(config.header, status);
        Ok(Action::Deliver(request))
    }
}

plugin_sdk::export_plugin!(StatusFilter);

/// The config, checked: every error names the field it is about.
struct Config {
    drop_statuses: Vec<String>,
    header: String,
}

impl Config {
    fn parse(config: &Value) -> Result<Self, Error> {
        let drop_statuses = match config.get("drop_statuses") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(Error::field(
                        format!("drop_statuses[{i}]"),
                        "expected a string",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(Error::field("drop_statuses", "expected a list of strings")),
        };
        let header = match config.get("header") {
            None | Some(Value::Null) => "x-status".to_owned(),
            Some(Value::String(s)) if plugin_sdk::is_header_name(s) => s.clone(),
            Some(_) => return Err(Error::field("header", "expected a header name")),
        };
        Ok(Self {
            drop_statuses,
            header,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(status: Value, config: Value) -> Result<Action, Error> {
        let event = Event::new("whatsapp:message:status", json!({ "status": status }));
        let request = Request::new("POST", "https://example.com/hook");
        StatusFilter::transform(event, request, &config)
    }

    #[test]
    fn drops_configured_statuses() {
        let config = json!({"drop_statuses": ["read"]});
        assert_eq!(
            run(json!("read"), config).unwrap(),
            Action::drop("status `read` is filtered out")
        );
    }

    #[test]
    fn tags_other_events() {
        let config = json!({"drop_statuses": ["read"], "header": "x-wa-status"});
        let Action::Deliver(request) = run(json!("sent"), config).unwrap() else {
            panic!("expected deliver");
        };
        assert_eq!(request.header("x-wa-status"), Some("sent"));
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = StatusFilter::validate_config(&json!({"drop_statuses": [1]})).unwrap_err();
        assert_eq!(err.to_string(), "drop_statuses[0]: expected a string");
        let err = StatusFilter::validate_config(&json!({"header": "a b"})).unwrap_err();
        assert_eq!(err.to_string(), "header: expected a header name");
    }
}
