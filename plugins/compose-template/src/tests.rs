//! Whole-plugin tests: the seed's examples, byte for byte, and the policies.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

/// The seed's "Message Status Notification" example, as the gateway would
/// hand it over.
fn status_event() -> Event {
    Event::new(
        "whatsapp:message:status",
        json!({
            "id": "a418d672-9781-4d97-b517-a56f7d95ad8a",
            "channel": "whatsapp",
            "from": "919019120xxx",
            "to": "9190199xxxxx",
            "status": "sent|delivered|read|failed|deleted",
            "delivered_at": "2021-06-18T14:48:06.886358Z",
            "read_at": "2021-06-18T14:48:06.886358Z",
            "processed_at": "2021-06-18T14:48:06.886358Z",
            "timestamp": "2021-06-18T14:48:06.886358Z",
            "foreign_id": "your-business-identifier"
        }),
    )
    .with_id("evt_01J0SEED000000000000000003")
    .with_channel("whatsapp")
    .with_tenant("ten_1")
    .with_created_at("2021-06-18T14:48:07Z")
}

/// The request the gateway would send before the plugin: the endpoint's url
/// and the event payload as JSON.
fn gateway_request() -> Request {
    let mut request = Request::new("POST", "https://receiver.example/hooks");
    request.set_json_body(&status_event().payload);
    request
}

fn run(config: Value) -> Result<Action, Error> {
    assert_eq!(ComposeTemplate::validate_config(&config), Ok(()));
    run_both_ways(&status_event(), gateway_request(), &config)
}

/// Runs the plugin both ways the SDK can call it: `transform` with the event and
/// config parsed, and `transform_raw` with their text (what a delivery runs, the
/// payload read lazily), the payload's text pretty-printed so that copying from it
/// must not copy its spacing. Asserts that they answer alike; returns the answer.
fn run_both_ways(event: &Event, request: Request, config: &Value) -> Result<Action, Error> {
    let config_text = config.to_string();
    let parsed = plugin_sdk::parse_config(&config_text).unwrap();
    let full = ComposeTemplate::transform(event.clone(), request.clone(), &parsed);
    let payload = serde_json::to_string_pretty(&event.payload).unwrap();
    let raw = RawEvent {
        id: &event.id,
        event_type: &event.event_type,
        tenant: &event.tenant,
        channel: event.channel.as_deref(),
        created_at: &event.created_at,
        payload: &payload,
    };
    let lazy = ComposeTemplate::transform_raw(raw, request, &config_text);
    assert_eq!(lazy, full, "config {config_text}, payload {payload}");
    full
}

fn deliver(config: Value) -> Request {
    match run(config).unwrap() {
        Action::Deliver(request) => request,
        Action::Drop(reason) => panic!("dropped: {reason}"),
    }
}

fn header_pairs(request: &Request) -> Vec<(&str, &str)> {
    request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[test]
fn seed_url_example_1() {
    let request = deliver(json!({
        "url": "https://www.domain.com/ack/receive?id=@{{id}}&mobile=@{{payload.mobile}}&status=@{{payload.status}}  ",
        "method": "GET"
    }));
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.url,
        "https://www.domain.com/ack/receive?id=evt_01J0SEED000000000000000003&mobile=&status=sent%7Cdelivered%7Cread%7Cfailed%7Cdeleted"
    );
    assert!(request.body.is_empty());
    assert_eq!(request.header("content-type"), None);
}

#[test]
fn seed_url_example_2() {
    let request = deliver(json!({
        "url": "https://www.domain.com/ack/receive?message_id=@{{payload.id}}&mobile_number=@{{payload.mobile}}&message_status=@{{payload.status}}",
        "method": "GET"
    }));
    assert_eq!(
        request.url,
        "https://www.domain.com/ack/receive?message_id=a418d672-9781-4d97-b517-a56f7d95ad8a&mobile_number=&message_status=sent%7Cdelivered%7Cread%7Cfailed%7Cdeleted"
    );
}

#[test]
fn seed_curl_example() {
    // curl -X POST https://www.domain.com/ack/receive?id=@{{payload.id}} \
    //   -H 'content-type: application/json' -H "Authorization: Bearer %token%" \
    //   -d '{"id": "@{{payload.id}}", "mobile": "@{{payload.mobile}}", ...}'
    let request = deliver(json!({
        "url": "https://www.domain.com/ack/receive?id=@{{payload.id}}",
        "method": "POST",
        "headers": {
            "content-type": "application/json",
            "Authorization": "Bearer %token%"
        },
        "body_format": "json",
        "body": {
            "id": "@{{payload.id}}",
            "mobile": "@{{payload.mobile}}",
            "message_status": "@{{payload.status}}",
            "read_at": "@{{payload.read_at}}"
        }
    }));
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.url,
        "https://www.domain.com/ack/receive?id=a418d672-9781-4d97-b517-a56f7d95ad8a"
    );
    assert_eq!(
        header_pairs(&request),
        [
            ("content-type", "application/json"),
            ("Authorization", "Bearer %token%")
        ]
    );
    assert_eq!(
        String::from_utf8(request.body).unwrap(),
        r#"{"id":"a418d672-9781-4d97-b517-a56f7d95ad8a","mobile":"","message_status":"sent|delivered|read|failed|deleted","read_at":"2021-06-18T14:48:06.886358Z"}"#
    );
}

#[test]
fn seed_curl_example_as_form() {
    let request = deliver(json!({
        "url": "https://www.domain.com/ack/receive?id=@{{payload.id}}",
        "body_format": "form",
        "body": {
            "id": "@{{payload.id}}",
            "message_status": "@{{payload.status}}",
            "read_at": "@{{payload.read_at}}"
        }
    }));
    assert_eq!(
        header_pairs(&request),
        [("content-type", "application/x-www-form-urlencoded")]
    );
    assert_eq!(
        String::from_utf8(request.body).unwrap(),
        "id=a418d672-9781-4d97-b517-a56f7d95ad8a&message_status=sent%7Cdelivered%7Cread%7Cfailed%7Cdeleted&read_at=2021-06-18T14%3A48%3A06.886358Z"
    );
}

#[test]
fn empty_config_keeps_the_request() {
    assert_eq!(deliver(json!({})), gateway_request());
    assert_eq!(deliver(Value::Null), gateway_request());
}

#[test]
fn json_body_keeps_value_types() {
    let event = Event::new(
        "order.paid",
        json!({"total": 12.5, "items": [{"sku": "t-1"}], "paid": true, "note": null}),
    );
    let config = Config::parse(&json!({
        "body": {
            "total": "@{{payload.total}}",
            "items": "@{{payload.items}}",
            "first": ["@{{payload.items.0.sku}}", 1, false],
            "paid": "@{{payload.paid}}",
            "note": "@{{payload.note}}",
            "summary": "@{{payload.items.0.sku}} x @{{payload.total}} (@{{type}})",
            "fixed": 3
        }
    }))
    .unwrap();
    let request = compose(&event, Request::new("PUT", "https://r.example/"), &config).unwrap();
    assert_eq!(
        String::from_utf8(request.body).unwrap(),
        r#"{"total":12.5,"items":[{"sku":"t-1"}],"first":["t-1",1,false],"paid":true,"note":null,"summary":"t-1 x 12.5 (order.paid)","fixed":3}"#
    );
    assert_eq!(request.method, "PUT");
}

#[test]
fn form_without_template_encodes_the_request_body() {
    let request = deliver(json!({"body_format": "form"}));
    let body = String::from_utf8(request.body).unwrap();
    assert!(
        body.starts_with(
            "id=a418d672-9781-4d97-b517-a56f7d95ad8a&channel=whatsapp&from=919019120xxx&"
        ),
        "{body}"
    );
}

#[test]
fn path_values_are_encoded_as_segments() {
    let request = deliver(json!({
        "url": "https://r.example/status/@{{payload.status}}/@{{payload.foreign_id}}?at=@{{payload.read_at}}"
    }));
    assert_eq!(
        request.url,
        "https://r.example/status/sent%7Cdelivered%7Cread%7Cfailed%7Cdeleted/your-business-identifier?at=2021-06-18T14:48:06.886358Z"
    );
}

#[test]
fn header_values_are_text_and_reject_line_breaks() {
    let request =
        deliver(json!({"headers": {"X-Status": "@{{payload.status}}", "X-Event": "@{{type}}"}}));
    assert_eq!(
        request.header("x-status"),
        Some("sent|delivered|read|failed|deleted")
    );
    assert_eq!(request.header("x-event"), Some("whatsapp:message:status"));

    let event = Event::new("t", json!({"evil": "a\r\nHost: other"}));
    let config = Config::parse(&json!({"headers": {"X-A": "@{{payload.evil}}"}})).unwrap();
    let stop = compose(&event, Request::new("POST", "https://r.example/"), &config).unwrap_err();
    assert_eq!(
        stop,
        Stop::Fail(Error::new("headers.X-A: value would contain a line break"))
    );
}

#[test]
fn on_missing_policies() {
    let base = json!({"url": "https://r.example/?m=@{{payload.mobile}}"});
    let mut drop = base.clone();
    drop["on_missing"] = json!("drop");
    assert_eq!(
        run(drop).unwrap(),
        Action::drop("url: variable `payload.mobile` is missing")
    );
    let mut error = base.clone();
    error["on_missing"] = json!("error");
    assert_eq!(
        run(error).unwrap_err().to_string(),
        "url: variable `payload.mobile` is missing"
    );
    let mut body = json!({"on_missing": "error", "body": {"a": {"b": "@{{payload.nope}}"}}});
    assert_eq!(
        run(body.take()).unwrap_err().to_string(),
        "body.a.b: variable `payload.nope` is missing"
    );
}

#[test]
fn bad_config_is_an_error_at_transform_too() {
    let err = run_both_ways(
        &status_event(),
        gateway_request(),
        &json!({"body_format": "yaml"}),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), r#"body_format: expected "json" or "form""#);
}

/// What a delivery runs (`transform_raw`, the payload read lazily) answers as
/// `transform` on the parsed event, for every part a template can read into:
/// the url, headers, a JSON body (whole values, text, missing variables), a form
/// body, with and without a body template; and under each missing-variable policy.
#[test]
fn the_lazy_path_answers_as_the_parsed_one() {
    let event = Event::new(
        "t",
        json!({"s": "quote \" back \\ nl \n é 😀", "n": -1.5e3, "z": null, "dup": 1,
               "a": [1, {"k": [true, false]}], "o": {"b": 2, "a": 1}, "k\"q": "escaped key"}),
    )
    .with_id("evt_1")
    .with_channel("sms")
    .with_tenant("ten_1")
    .with_created_at("2024-01-01T00:00:00Z");
    let templates = [
        json!({"url": "https://r.example/@{{payload.s}}/?n=@{{payload.n}}&o=@{{payload.o}}&c=@{{channel}}"}),
        json!({"headers": {"X-A": "@{{payload.a.1.k.0}} @{{payload.z}} @{{tenant}}", "X-S": "@{{payload.s}}"}}),
        json!({"body": {
            "s": "@{{payload.s}}", "all": "@{{payload}}", "o": "@{{payload.o}}", "a1": "@{{payload.a.1}}",
            "text": "@{{created_at}} @{{payload.k\"q}} @{{payload.n}}", "missing": "@{{payload.nope}}",
            "deep_missing": "@{{payload.o.b.c}}", "literal": [1, null]
        }}),
        json!({"body_format": "form", "body": {"s": "@{{payload.s}}", "o": "@{{payload.o}}", "m": "@{{payload.x}}"}}),
        json!({"body_format": "form"}),
        json!({"method": "GET", "url": "https://r.example/?id=@{{id}}"}),
    ];
    for template in templates {
        for policy in ["empty", "drop", "error"] {
            let mut config = template.clone();
            config["on_missing"] = json!(policy);
            let mut request = Request::new("POST", "https://r.example/hook");
            request.set_json_body(&event.payload);
            // Panics inside if the two ways differ.
            let _ = run_both_ways(&event, request, &config);
        }
    }
    // And the payload's own errors: both ways refuse a payload that is not JSON.
    let raw = RawEvent {
        payload: "{\"a\":",
        ..RawEvent::default()
    };
    let err = ComposeTemplate::transform_raw(raw, gateway_request(), "{}").unwrap_err();
    assert!(
        err.to_string().starts_with("event payload is not JSON: "),
        "{err}"
    );
}

/// The JSON body is written straight to text; it must be the very bytes the body's
/// value serializes to, for every kind of template: nested objects and arrays,
/// literals, whole values copied from the event (strings with quotes and escapes,
/// numbers, arrays, objects, `null`), interpolated text, missing variables under
/// `empty`, and keys that need escaping.
#[test]
fn the_json_body_written_as_text_is_the_bodys_value_serialized() {
    let event = Event::new(
        "t",
        json!({"s": "quote \" back \\ nl \n é 😀", "n": -1.5e3, "z": null,
               "a": [1, {"k": [true, false]}], "o": {"b": 2, "a": 1}}),
    )
    .with_id("evt_1");
    let config = json!({"body": {
        "s": "@{{payload.s}}", "n": "@{{payload.n}}", "z": "@{{payload.z}}",
        "a": "@{{payload.a}}", "o": "@{{payload.o}}", "all": "@{{payload}}",
        "text": "id=@{{id}} s=@{{payload.s}} a=@{{payload.a}}",
        "missing": "@{{payload.nope}}", "missing_in_text": "x@{{payload.nope}}y",
        "literals": [1, 2.5, true, null, "plain", [], {}],
        "nested": {"deep": [{"k\"ey\\": "@{{type}}"}, ["@{{payload.n}}", "@{{channel}}"]]}
    }});
    let parsed = Config::parse(&config).unwrap();
    let vars = Vars::new(&event, parsed.on_missing);
    let template = parsed.body.as_ref().unwrap();
    let mut written = Vec::new();
    write_body(FieldPath::Root("body"), template, &vars, &mut written).unwrap();
    let value = render_body(FieldPath::Root("body"), template, &vars).unwrap();
    assert_eq!(
        String::from_utf8(written).unwrap(),
        serde_json::to_string(&value).unwrap()
    );
    assert_eq!(value["all"], event.payload);
    assert_eq!(value["missing"], "");
}

/// A missing variable under `drop` or `error` stops the written body as it stops
/// the rendered one, with the same field in the message.
#[test]
fn the_written_body_stops_on_a_missing_variable_as_the_rendered_one() {
    let event = Event::new("t", json!({"a": 1}));
    for policy in ["drop", "error"] {
        let config = json!({"on_missing": policy, "body": {"x": [1, {"y": "@{{payload.nope}}"}]}});
        let parsed = Config::parse(&config).unwrap();
        let vars = Vars::new(&event, parsed.on_missing);
        let template = parsed.body.as_ref().unwrap();
        let written = write_body(FieldPath::Root("body"), template, &vars, &mut Vec::new());
        let rendered = render_body(FieldPath::Root("body"), template, &vars).map(|_| ());
        assert_eq!(written, rendered, "{policy}");
        assert!(
            matches!(&written, Err(Stop::Drop(m)) if m.contains("body.x.1.y"))
                || matches!(&written, Err(Stop::Fail(e)) if e.to_string().contains("body.x.1.y")),
            "{policy}: {written:?}"
        );
    }
}

/// The payload, or a top-level field of it, copied whole into a JSON body is copied
/// from the payload's text: the spacing goes, number spellings and string escapes stay
/// as the sender wrote them. A value from deeper is written from its parsed value
/// (numbers as parsed: `1.50` -> `1.5`, big integers as floats). The body means the
/// same JSON as the one `transform` writes.
#[test]
fn a_value_copied_from_the_payload_text_keeps_the_sender_s_spelling() {
    let payload = r#" { "s" : "\u00e9\/\"\u0041 x" , "n" : 1.50 , "e": 1e2, "big": 18446744073709551616,
        "a" : [ 1 , -0 , { "k" : "v" , "z" : null } , [ ] ] , "t" : true, "o": {"deep": {"x": [ 1.0 ], "n": 1.50}} } "#;
    let raw = RawEvent {
        payload,
        ..RawEvent::default()
    };
    let config = r#"{"body": {"s": "@{{payload.s}}", "n": "@{{payload.n}}", "e": "@{{payload.e}}",
        "big": "@{{payload.big}}", "a": "@{{payload.a}}", "t": "@{{payload.t}}",
        "x": "@{{payload.o.deep.x}}", "a2": "@{{payload.a.2}}", "n2": "@{{payload.o.deep.n}}", "all": "@{{payload}}"}}"#;
    let body = |action: Action| match action {
        Action::Deliver(request) => String::from_utf8(request.body).unwrap(),
        Action::Drop(reason) => panic!("dropped: {reason}"),
    };
    let lazy = body(ComposeTemplate::transform_raw(raw, gateway_request(), config).unwrap());
    let config_value = plugin_sdk::parse_config(config).unwrap();
    let full = ComposeTemplate::transform(raw.parse().unwrap(), gateway_request(), &config_value);
    let full = body(full.unwrap());
    let meaning = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    assert_eq!(meaning(&lazy), meaning(&full));
    let all = r#"{"s":"\u00e9\/\"\u0041 x","n":1.50,"e":1e2,"big":18446744073709551616,"a":[1,-0,{"k":"v","z":null},[]],"t":true,"o":{"deep":{"x":[1.0],"n":1.50}}}"#;
    assert_eq!(
        lazy,
        format!(
            r#"{{"s":"\u00e9\/\"\u0041 x","n":1.50,"e":1e2,"big":18446744073709551616,"a":[1,-0,{{"k":"v","z":null}},[]],"t":true,"x":[1.0],"a2":{{"k":"v","z":null}},"n2":1.5,"all":{all}}}"#
        )
    );
    // A repeated key is copied too; read deeper, the last one counts (as parsed).
    let raw = RawEvent {
        payload: r#"{"dup": {"x": 1, "x": {"y": 2}}}"#,
        ..RawEvent::default()
    };
    let dup = r#"{"body": {"d": "@{{payload.dup}}", "x": "@{{payload.dup.x}}"}}"#;
    let lazy = body(ComposeTemplate::transform_raw(raw, gateway_request(), dup).unwrap());
    assert_eq!(lazy, r#"{"d":{"x":1,"x":{"y":2}},"x":{"y":2}}"#);
}
