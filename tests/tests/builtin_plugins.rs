//! The built-in plugins end to end, through the real gateway, Redis and
//! receivers: `compose-template` (the seed's Compose Webhook: its example urls
//! and curl body, as JSON, as a form and as a `GET`) and `chatbot-webhook`
//! (the seed's Custom Webhook: default chatbot body, auth styles, params,
//! nested body keys, channel filter), signing over the transformed body,
//! secrets kept out of API answers and logs, config validation, listing and
//! simulation.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gateway_e2e::signature::verify_standard;
use gateway_e2e::{Api, Received, Receiver, TestGateway};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// The seed's "Message Status Notification" payload.
fn status_payload() -> Value {
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
    })
}

/// The seed's message-status event as posted to `/v1/events`.
fn status_event() -> Value {
    json!({"type": "whatsapp:message:status", "channel": "whatsapp", "payload": status_payload()})
}

/// The seed's incoming-message payload with `message` as given.
fn incoming_payload(message: Value) -> Value {
    json!({
        "id": "our-message-id",
        "channels": [{"name": "whatsapp", "to": "919019120xxx"}],
        "recipient": {
            "from": "91XXXXXX",
            "user": {
                "id": "unique-id",
                "identifier_id": "unique-identifier-id",
                "subscriber_id": "unique-subscriber-id",
                "identity": "unique-user-identity",
                "username": "username",
                "first_name": "user first name",
                "middle_name": "user middle name",
                "last_name": "user last name",
                "email": "user email",
                "phone": "user phone number",
                "attributes": "user attributes",
                "user_info": {"picture": "null", "gender": "user-gender", "title": "null"}
            }
        },
        "message": message
    })
}

/// The seed's incoming TEXT message event.
fn incoming_text_event() -> Value {
    json!({
        "type": "whatsapp:message:in",
        "channel": "whatsapp",
        "payload": incoming_payload(json!({
            "type": "text",
            "payload": {"text": "This is a simple text message from whatsapp channel"}
        }))
    })
}

/// The seed's incoming IMAGE message event.
fn incoming_image_event() -> Value {
    json!({
        "type": "whatsapp:message:in",
        "channel": "whatsapp",
        "payload": incoming_payload(json!({
            "type": "image",
            "payload": {
                "url": "https://domin-name.com/your_image_path.png",
                "caption": "some caption for image",
                "filename": ""
            }
        }))
    })
}

/// The seed's example curl body template.
fn seed_body_template() -> Value {
    json!({
        "id": "@{{payload.id}}",
        "mobile": "@{{payload.mobile}}",
        "message_status": "@{{payload.status}}",
        "read_at": "@{{payload.read_at}}"
    })
}

/// The seed's curl body rendered for its status event, in the seed's key order.
const SEED_JSON_BODY: &str = r#"{"id":"a418d672-9781-4d97-b517-a56f7d95ad8a","mobile":"","message_status":"sent|delivered|read|failed|deleted","read_at":"2021-06-18T14:48:06.886358Z"}"#;

/// The same fields as `application/x-www-form-urlencoded`.
const SEED_FORM_BODY: &str = "id=a418d672-9781-4d97-b517-a56f7d95ad8a&mobile=&message_status=sent%7Cdelivered%7Cread%7Cfailed%7Cdeleted&read_at=2021-06-18T14%3A48%3A06.886358Z";

fn only(rx: &Receiver) -> Received {
    let got = rx.received();
    assert_eq!(got.len(), 1, "expected exactly one request: {got:?}");
    got.into_iter().next().unwrap()
}

fn body_text(r: &Received) -> &str {
    std::str::from_utf8(&r.body).expect("utf-8 body")
}

/// The same compact JSON text, keys in any order: equal values, and equal
/// lengths, so the spacing and escaping are the expected ones too.
fn assert_same_json(got: &str, expected: &str) {
    let parse = |text: &str| serde_json::from_str::<Value>(text).expect("JSON body");
    assert_eq!(parse(got), parse(expected), "{got}");
    assert_eq!(got.len(), expected.len(), "{got}");
}

/// The same form pairs, byte for byte each, in any order.
fn assert_same_form(got: &str, expected: &str) {
    let pairs = |text: &str| {
        let mut pairs: Vec<String> = text.split('&').map(str::to_owned).collect();
        pairs.sort();
        pairs
    };
    assert_eq!(pairs(got), pairs(expected), "{got}");
}

/// Waits for the event's single delivery to be `delivered`; returns the log.
async fn delivered_log(api: &Api, event_id: &str) -> Value {
    let logs = api.deliveries_of(event_id).await;
    assert_eq!(logs.len(), 1, "{logs:?}");
    api.wait_log_status(&logs[0], "delivered", WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_template_sends_the_seed_examples_composed_and_signed() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let (rx_json, rx_form, rx_get_id, rx_get_msg) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    // The curl example: POST, its headers, its JSON body.
    let (_, json_secret) = api
        .endpoint(json!({
            "url": rx_json.url("/endpoint-url-is-replaced"),
            "event_types": ["whatsapp:message:status"],
            "plugins": [{"plugin": "compose-template", "config": {
                "url": rx_json.url("/ack/receive?id=@{{payload.id}}"),
                "method": "POST",
                "headers": {"content-type": "application/json", "Authorization": "Bearer %token%"},
                "body_format": "json",
                "body": seed_body_template()
            }}]
        }))
        .await;
    // The same body as FormData.
    let (_, form_secret) = api
        .endpoint(json!({
            "url": rx_form.url("/endpoint-url-is-replaced"),
            "event_types": ["whatsapp:message:status"],
            "plugins": [{"plugin": "compose-template", "config": {
                "url": rx_form.url("/ack/receive?id=@{{payload.id}}"),
                "method": "POST",
                "body_format": "form",
                "body": seed_body_template()
            }}]
        }))
        .await;
    // The seed's two example urls, as GET (no body), on a POST endpoint.
    let (_, get_id_secret) = api
        .endpoint(json!({
            "url": rx_get_id.url("/endpoint-url-is-replaced"),
            "event_types": ["whatsapp:message:status"],
            "plugins": [{"plugin": "compose-template", "config": {
                "url": rx_get_id.url("/ack/receive?id=@{{id}}&mobile=@{{payload.mobile}}&status=@{{payload.status}}"),
                "method": "GET",
                "body": seed_body_template()
            }}]
        }))
        .await;
    let (_, get_msg_secret) = api
        .endpoint(json!({
            "url": rx_get_msg.url("/endpoint-url-is-replaced"),
            "event_types": ["whatsapp:message:status"],
            "plugins": [{"plugin": "compose-template", "config": {
                "url": rx_get_msg.url("/ack/receive?message_id=@{{payload.id}}&mobile_number=@{{payload.mobile}}&message_status=@{{payload.status}}"),
                "method": "get"
            }}]
        }))
        .await;

    let (event_id, deliveries) = api.event(status_event()).await;
    assert_eq!(deliveries, 4);
    for rx in [&rx_json, &rx_form, &rx_get_id, &rx_get_msg] {
        rx.wait_for(1, WAIT).await;
    }
    let log_ids = api.deliveries_of(&event_id).await;

    // JSON: path + query, headers, exact body bytes, signed over that body.
    let r = only(&rx_json);
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.uri.to_string(),
        "/ack/receive?id=a418d672-9781-4d97-b517-a56f7d95ad8a"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), Some("Bearer %token%"));
    // Byte for byte; key order is checked by the test below.
    assert_same_json(body_text(&r), SEED_JSON_BODY);
    assert!(
        verify_standard(&json_secret, &r),
        "JSON compose is not signed over the transformed body"
    );
    let webhook_id = r.header("webhook-id").expect("webhook-id");
    assert!(webhook_id.starts_with("msg_"), "{webhook_id}");
    assert!(log_ids.iter().any(|id| id == webhook_id));

    // Form: content type and exact bytes, signed.
    let r = only(&rx_form);
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.uri.to_string(),
        "/ack/receive?id=a418d672-9781-4d97-b517-a56f7d95ad8a"
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_same_form(body_text(&r), SEED_FORM_BODY);
    assert!(
        verify_standard(&form_secret, &r),
        "form compose is not signed over the transformed body"
    );
    assert!(r.header("webhook-id").unwrap().starts_with("msg_"));

    // GET with the first example url: `@{{id}}` is the gateway's event id,
    // missing `mobile` is empty, `|` percent-encoded; no body despite a template.
    let r = only(&rx_get_id);
    assert_eq!(r.method, "GET");
    assert_eq!(
        r.uri.to_string(),
        format!(
            "/ack/receive?id={event_id}&mobile=&status=sent%7Cdelivered%7Cread%7Cfailed%7Cdeleted"
        )
    );
    assert!(r.body.is_empty(), "GET carried a body: {:?}", r.body);
    assert_eq!(r.header("content-type"), None);
    assert!(verify_standard(&get_id_secret, &r), "GET is not signed");
    assert!(r.header("webhook-id").unwrap().starts_with("msg_"));

    // GET with the second example url, exactly as the plugin README shows it.
    let r = only(&rx_get_msg);
    assert_eq!(r.method, "GET");
    assert_eq!(
        r.uri.to_string(),
        "/ack/receive?message_id=a418d672-9781-4d97-b517-a56f7d95ad8a&mobile_number=&message_status=sent%7Cdelivered%7Cread%7Cfailed%7Cdeleted"
    );
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), None);
    assert!(verify_standard(&get_msg_secret, &r));

    // The log keeps the request as sent: the composed url, method and body.
    for log_id in &log_ids {
        let log = api.wait_log_status(log_id, "delivered", WAIT).await;
        let sent = &log["request"];
        assert!(
            sent["url"].as_str().unwrap().contains("/ack/receive?"),
            "{sent}"
        );
        if sent["method"] == "GET" {
            assert_eq!(sent["body"], "", "{sent}");
        } else {
            let body = sent["body"].as_str().unwrap();
            if body.starts_with('{') {
                assert_same_json(body, SEED_JSON_BODY);
            } else {
                assert_same_form(body, SEED_FORM_BODY);
            }
        }
    }
    gw.stop().await;
}

/// The seed's curl body lists `id`, `mobile`, `message_status`, `read_at`;
/// the receiver must get them in that order, as JSON and as a form, and the
/// simulation must show the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_template_keeps_the_seed_body_key_order() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let (rx_json, rx_form) = (Receiver::start().await, Receiver::start().await);
    for (rx, format) in [(&rx_json, "json"), (&rx_form, "form")] {
        api.endpoint(json!({
            "url": rx.url("/ack/receive"),
            "plugins": [{"plugin": "compose-template", "config": {
                "body_format": format,
                "body": seed_body_template()
            }}]
        }))
        .await;
    }
    api.event(status_event()).await;
    let json_req = rx_json.wait_for(1, WAIT).await.remove(0);
    let form_req = rx_form.wait_for(1, WAIT).await.remove(0);
    let (_, sim) = api
        .post(
            "/v1/plugins/compose-template/simulate",
            json!({
                "event": {"type": "whatsapp:message:status", "payload": status_payload()},
                "config": {"body": seed_body_template()}
            }),
        )
        .await;
    assert_eq!(body_text(&json_req), SEED_JSON_BODY);
    assert_eq!(body_text(&form_req), SEED_FORM_BODY);
    assert_eq!(sim["request"]["body"], SEED_JSON_BODY, "{sim}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_template_percent_encodes_values_by_position() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (_, secret) = api
        .endpoint(json!({
            "url": rx.url("/"),
            "plugins": [{"plugin": "compose-template", "config": {
                "url": rx.url("/ack/@{{payload.seg}}/x?v=@{{ payload.q }}&n=@{{payload.n}}"),
                "headers": {"X-Status": "@{{payload.h}}"},
                "body": {"total": "@{{payload.n}}", "line": "n=@{{payload.n}}", "fixed": true}
            }}]
        }))
        .await;
    api.event(json!({
        "type": "Order.created",
        "payload": {"seg": "a b/c?d", "q": "x&y=z+é#", "h": "a&b=c d/e", "n": 42}
    }))
    .await;
    rx.wait_for(1, WAIT).await;
    let r = only(&rx);
    // A value can add neither a path segment nor a query parameter.
    assert_eq!(
        r.uri.to_string(),
        "/ack/a%20b%2Fc%3Fd/x?v=x%26y%3Dz%2B%C3%A9%23&n=42"
    );
    // Headers take the value as text, unencoded.
    assert_eq!(r.header("x-status"), Some("a&b=c d/e"));
    // A lone variable keeps its JSON type; an interpolated one is text.
    assert_same_json(body_text(&r), r#"{"total":42,"line":"n=42","fixed":true}"#);
    assert!(verify_standard(&secret, &r));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatbot_webhook_default_body_for_the_seed_text_and_image_messages() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (_, secret) = api
        .endpoint(json!({
            "url": rx.url("/chat"),
            "event_types": ["whatsapp:message:in"],
            "plugins": [{"plugin": "chatbot-webhook", "config": {"alias": "Support CRM"}}]
        }))
        .await;
    let (text_id, _) = api.event(incoming_text_event()).await;
    let (image_id, _) = api.event(incoming_image_event()).await;
    let got = rx.wait_for(2, WAIT).await;
    let text_log = api.deliveries_of(&text_id).await.remove(0);
    let image_log = api.deliveries_of(&image_id).await.remove(0);
    let by_log = |log: &str| {
        got.iter()
            .find(|r| r.header("webhook-id") == Some(log))
            .unwrap_or_else(|| panic!("no request with webhook-id {log}"))
    };

    let text = by_log(&text_log);
    assert_eq!(text.method, "POST");
    assert_eq!(text.uri.to_string(), "/chat");
    assert_eq!(text.header("content-type"), Some("application/json"));
    assert_eq!(
        body_text(text),
        r#"{"chatId":"whatsapp:919019120xxx:91XXXXXX","contact":"91XXXXXX","event":"MESSAGE","text":"This is a simple text message from whatsapp channel"}"#
    );
    assert!(verify_standard(&secret, text));

    let image = by_log(&image_log);
    assert_eq!(
        body_text(image),
        r#"{"chatId":"whatsapp:919019120xxx:91XXXXXX","contact":"91XXXXXX","event":"MESSAGE","text":"","multimedia":{"url":"https://domin-name.com/your_image_path.png","caption":"some caption for image"}}"#
    );
    assert!(verify_standard(&secret, image));
    assert_eq!(rx.settle(Duration::from_millis(200)).await.len(), 2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatbot_webhook_auth_styles_params_nested_body_and_secrets_masked() {
    const TOKEN: &str = "tok-bearer-s3cr3t-7f1c";
    const PASSWORD: &str = "pa55-w0rd-s3cr3t-91ab";
    const HEADER_KEY: &str = "hdr-apikey-s3cr3t-22cd";
    const QUERY_KEY: &str = "qry-apikey-s3cr3t-33ef";
    let basic = STANDARD.encode(format!("alice:{PASSWORD}"));
    let secrets = [TOKEN, PASSWORD, HEADER_KEY, QUERY_KEY, basic.as_str()];

    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (bearer_ep, bearer_secret) = api
        .endpoint(json!({
            "url": rx.url("/unused"),
            "plugins": [{"plugin": "chatbot-webhook", "config": {
                "alias": "Bearer CRM",
                "method": "POST",
                "url": rx.url("/bearer?fixed=1"),
                "params": [
                    {"key": "source", "value": "gateway", "type": "text"},
                    {"key": "contact", "value": "payload.recipient.from", "type": "variable"},
                    {"key": "q", "value": "a b&c"},
                    {"key": "missing", "value": "payload.nope", "type": "variable"}
                ],
                "auth": {"type": "bearer", "token": TOKEN},
                "headers": [
                    {"key": "X-Env", "value": "prod", "type": "text"},
                    {"key": "X-Chat", "value": "chat.chatId", "type": "variable"},
                    {"key": "Authorization", "value": "overridden by auth"}
                ],
                "body": [
                    {"key": "chatId", "value": "chat.chatId", "type": "variable"},
                    {"key": "user.name", "value": "payload.recipient.user.first_name", "type": "variable"},
                    {"key": "user.phones[]", "value": "1"},
                    {"key": "user.phones[]", "value": "2"},
                    {"key": "tags[]", "value": "whatsapp", "type": "text"},
                    {"key": "tags[]", "value": "channel", "type": "variable"},
                    {"key": "a.b.c", "value": "deep"},
                    {"key": "media", "value": "chat.multimedia", "type": "variable"}
                ]
            }}]
        }))
        .await;
    let (basic_ep, _) = api
        .endpoint(json!({
            "url": rx.url("/basic"),
            "plugins": [{"plugin": "chatbot-webhook", "config": {
                "auth": {"type": "basic", "username": "alice", "password": PASSWORD},
                "body": []
            }}]
        }))
        .await;
    let (header_ep, _) = api
        .endpoint(json!({
            "url": rx.url("/key-header"),
            "plugins": [{"plugin": "chatbot-webhook", "config": {
                "auth": {"type": "api_key", "key": "X-Api-Key", "value": HEADER_KEY, "in": "header"}
            }}]
        }))
        .await;
    let (query_ep, _) = api
        .endpoint(json!({
            "url": rx.url("/key-query"),
            "plugins": [{"plugin": "chatbot-webhook", "config": {
                "params": [{"key": "source", "value": "gateway"}],
                "auth": {"type": "api_key", "key": "api_key", "value": QUERY_KEY, "in": "query"}
            }}]
        }))
        .await;

    // API answers show the auth values masked, never the secrets.
    let (status, one) = api.get(&format!("/v1/endpoints/{bearer_ep}")).await;
    assert_eq!(status, StatusCode::OK);
    let auth = &one["plugins"][0]["config"]["auth"];
    assert_eq!(auth["type"], "bearer");
    assert_eq!(auth["token"], "********", "{one}");
    assert!(!one.to_string().contains(TOKEN), "{one}");
    let (_, basic_one) = api.get(&format!("/v1/endpoints/{basic_ep}")).await;
    assert_eq!(
        basic_one["plugins"][0]["config"]["auth"]["username"],
        "alice"
    );
    assert_eq!(
        basic_one["plugins"][0]["config"]["auth"]["password"],
        "********"
    );
    let (status, list) = api.get("/v1/endpoints").await;
    assert_eq!(status, StatusCode::OK);
    let listed = list.to_string();
    for secret in secrets {
        assert!(!listed.contains(secret), "{secret} in {listed}");
    }
    for (ep, field) in [(&header_ep, "value"), (&query_ep, "value")] {
        let entry = list["data"]
            .as_array()
            .expect("data")
            .iter()
            .find(|e| e["id"] == ep.as_str())
            .expect("listed");
        assert_eq!(entry["plugins"][0]["config"]["auth"][field], "********");
        assert_eq!(entry["plugins"][0]["config"]["auth"]["type"], "api_key");
    }

    let (event_id, deliveries) = api.event(incoming_text_event()).await;
    assert_eq!(deliveries, 4);
    let got = rx.wait_for(4, WAIT).await;
    let by_path = |path: &str| {
        got.iter()
            .find(|r| r.uri.path() == path)
            .unwrap_or_else(|| panic!("nothing at {path}: {got:?}"))
    };

    // bearer + params after the url's own query + headers + nested body
    let r = by_path("/bearer");
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.uri.query(),
        Some("fixed=1&source=gateway&contact=91XXXXXX&q=a+b%26c&missing=")
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(r.headers.get_all("authorization").iter().count(), 1);
    assert_eq!(r.header("x-env"), Some("prod"));
    assert_eq!(r.header("x-chat"), Some("whatsapp:919019120xxx:91XXXXXX"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        body_text(r),
        r#"{"chatId":"whatsapp:919019120xxx:91XXXXXX","user":{"name":"user first name","phones":["1","2"]},"tags":["whatsapp","whatsapp"],"a":{"b":{"c":"deep"}},"media":null}"#
    );
    assert!(verify_standard(&bearer_secret, r));

    // basic: what a receiver decodes; an empty `body` list sends `{}`
    let r = by_path("/basic");
    let header = r.header("authorization").expect("authorization");
    let encoded = header.strip_prefix("Basic ").expect("Basic scheme");
    assert_eq!(
        String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap(),
        format!("alice:{PASSWORD}")
    );
    assert_eq!(r.uri.query(), None);
    assert_eq!(body_text(r), "{}");

    // api key in a header
    let r = by_path("/key-header");
    assert_eq!(r.header("x-api-key"), Some(HEADER_KEY));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.uri.query(), None);
    assert_eq!(r.json()["contact"], "91XXXXXX");

    // api key in the query, after the params
    let r = by_path("/key-query");
    assert_eq!(
        r.uri.query(),
        Some(format!("source=gateway&api_key={QUERY_KEY}").as_str())
    );
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("x-api-key"), None);

    // The delivery logs keep the requests as sent, with no secret anywhere.
    let logs = api.deliveries_of(&event_id).await;
    assert_eq!(logs.len(), 4);
    for log_id in &logs {
        let log = api.wait_log_status(log_id, "delivered", WAIT).await;
        let text = log.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
    }
    let (_, list) = api.get("/v1/logs?limit=10").await;
    let text = list.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} leaked into {text}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatbot_webhook_channels_filter_drops_other_connections() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({
        "url": rx.url("/chat"),
        "plugins": [{"plugin": "chatbot-webhook", "config": {
            "alias": "WA bot",
            "channels": ["WhatsApp:919019120xxx"]
        }}]
    }))
    .await;

    // From the connected WhatsApp number: delivered.
    let (wa_id, _) = api.event(incoming_text_event()).await;
    delivered_log(&api, &wa_id).await;
    assert_eq!(rx.wait_for(1, WAIT).await.len(), 1);

    // From an SMS connection: dropped, with a reason, nothing sent.
    let mut sms = incoming_text_event();
    sms["channel"] = json!("sms");
    sms["payload"]["channels"] = json!([{"name": "sms", "to": "5550100"}]);
    let (sms_id, deliveries) = api.event(sms).await;
    assert_eq!(deliveries, 1);
    let log_id = api.deliveries_of(&sms_id).await.remove(0);
    let log = api.wait_log_status(&log_id, "dropped", WAIT).await;
    let reason = log["last_error"].as_str().expect("last_error");
    assert!(reason.contains("WA bot"), "{reason}");
    assert!(reason.contains("not a connected channel"), "{reason}");
    assert!(reason.contains("sms:5550100"), "{reason}");

    // From another WhatsApp number: dropped too.
    let mut other = incoming_text_event();
    other["payload"]["channels"] = json!([{"name": "whatsapp", "to": "910000000000"}]);
    other["channel"] = Value::Null;
    let (other_id, _) = api.event(other).await;
    let log_id = api.deliveries_of(&other_id).await.remove(0);
    let log = api.wait_log_status(&log_id, "dropped", WAIT).await;
    assert!(
        log["last_error"]
            .as_str()
            .unwrap()
            .contains("whatsapp:910000000000"),
        "{log}"
    );

    let got = rx.settle(Duration::from_millis(300)).await;
    assert_eq!(got.len(), 1, "a dropped event reached the receiver");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plugin_configs_are_422_naming_the_field() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let cases = [
        (
            json!({"plugin": "compose-template", "config": {"body_format": "xml"}}),
            "body_format",
        ),
        (
            json!({"plugin": "compose-template", "config": {"headers": {"X-A": 1}}}),
            "headers.X-A",
        ),
        (
            json!({"plugin": "compose-template", "config": {"colour": "red"}}),
            "colour",
        ),
        (
            json!({"plugin": "chatbot-webhook", "config": {"auth": {"type": "magic"}}}),
            "auth.type",
        ),
        (
            json!({"plugin": "chatbot-webhook", "config": {"auth": {"type": "bearer"}}}),
            "auth.token",
        ),
        (
            json!({"plugin": "chatbot-webhook", "config": {"body": [{"key": "a", "value": "1"}, {"key": "a.b", "value": "2"}]}}),
            "body[1].key",
        ),
    ];
    for (plugin, field) in cases {
        let (status, body) = api
            .post(
                "/v1/endpoints",
                json!({"url": "http://127.0.0.1:9/hook", "plugins": [plugin]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{plugin}: {body}");
        assert_eq!(body["error"]["code"], "validation_error", "{body}");
        assert_eq!(body["error"]["field"], "plugins[0].config", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{plugin}: {message}");
    }
    let (_, list) = api.get("/v1/endpoints").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtins_are_listed_and_compose_template_simulates_the_seed_request() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let (status, list) = api.get("/v1/plugins").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"compose-template"), "{list}");
    assert!(names.contains(&"chatbot-webhook"), "{list}");
    for p in list["data"].as_array().unwrap() {
        assert_eq!(p["builtin"], true, "{p}");
    }

    let (status, sim) = api
        .post(
            "/v1/plugins/compose-template/simulate",
            json!({
                "event": {"type": "whatsapp:message:status", "channel": "whatsapp", "payload": status_payload()},
                "config": {
                    "url": "https://www.domain.com/ack/receive?id=@{{payload.id}}",
                    "method": "POST",
                    "headers": {"Authorization": "Bearer %token%"},
                    "body_format": "json",
                    "body": seed_body_template()
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sim}");
    assert_eq!(sim["action"], "deliver", "{sim}");
    let request = &sim["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(
        request["url"],
        "https://www.domain.com/ack/receive?id=a418d672-9781-4d97-b517-a56f7d95ad8a"
    );
    let headers: Vec<(String, String)> = request["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_ascii_lowercase(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(headers.contains(&("content-type".into(), "application/json".into())));
    assert!(headers.contains(&("authorization".into(), "Bearer %token%".into())));
    assert_same_json(request["body"].as_str().unwrap(), SEED_JSON_BODY);

    // The chatbot plugin simulates too: a drop for a foreign channel.
    let (status, sim) = api
        .post(
            "/v1/plugins/chatbot-webhook/simulate",
            json!({
                "event": {"type": "whatsapp:message:in", "channel": "whatsapp", "payload": incoming_payload(json!({"type": "text", "payload": {"text": "hi"}}))},
                "config": {"channels": ["sms"]}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sim}");
    assert_eq!(sim["action"], "drop", "{sim}");
    assert!(sim["reason"]
        .as_str()
        .unwrap()
        .contains("not a connected channel"));
    gw.stop().await;
}
