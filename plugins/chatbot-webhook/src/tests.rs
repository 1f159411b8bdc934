//! Whole-plugin tests with the seed's incoming-message examples.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

/// The seed's incoming message, with `message` as given.
fn incoming(message: Value) -> Event {
    Event::new(
        "whatsapp:message:in",
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
        }),
    )
    .with_id("evt_1")
    .with_channel("whatsapp")
}

fn text_message() -> Event {
    incoming(json!({
        "type": "text",
        "payload": {"text": "This is a simple text message from whatsapp channel"}
    }))
}

fn image_message() -> Event {
    incoming(json!({
        "type": "image",
        "payload": {
            "url": "https://domin-name.com/your_image_path.png",
            "caption": "some caption for image",
            "filename": ""
        }
    }))
}

fn gateway_request() -> Request {
    let mut request = Request::new("POST", "https://bot.example/hook");
    request.set_json_body(&json!({"raw": true}));
    request
}

fn run(event: Event, config: Value) -> Result<Action, Error> {
    assert_eq!(ChatbotWebhook::validate_config(&config), Ok(()));
    ChatbotWebhook::transform(event, gateway_request(), &config)
}

fn deliver(event: Event, config: Value) -> Request {
    match run(event, config).unwrap() {
        Action::Deliver(request) => request,
        Action::Drop(reason) => panic!("dropped: {reason}"),
    }
}

fn body(request: &Request) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

#[test]
fn default_body_for_seed_text_message() {
    let request = deliver(text_message(), json!({}));
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://bot.example/hook");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        body(&request),
        r#"{"chatId":"whatsapp:919019120xxx:91XXXXXX","contact":"91XXXXXX","event":"MESSAGE","text":"This is a simple text message from whatsapp channel"}"#
    );
}

#[test]
fn default_body_for_seed_image_message() {
    let request = deliver(image_message(), Value::Null);
    assert_eq!(
        body(&request),
        r#"{"chatId":"whatsapp:919019120xxx:91XXXXXX","contact":"91XXXXXX","event":"MESSAGE","text":"","multimedia":{"url":"https://domin-name.com/your_image_path.png","caption":"some caption for image"}}"#
    );
}

#[test]
fn session_end_and_explicit_chat_id() {
    let mut event = Event::new(
        "whatsapp:session:closed",
        json!({"chat_id": "chat-42", "recipient": {"from": "91XXXXXX"}}),
    );
    event.channel = Some("whatsapp".into());
    let request = deliver(event, json!({}));
    assert_eq!(
        body(&request),
        r#"{"chatId":"chat-42","contact":"91XXXXXX","event":"END","text":""}"#
    );
}

#[test]
fn params_headers_and_body_lists() {
    let request = deliver(
        image_message(),
        json!({
            "alias": "CRM",
            "method": "PUT",
            "url": "https://crm.example/in?v=2",
            "params": [
                {"key": "source", "value": "gateway", "type": "text"},
                {"key": "contact", "value": "payload.recipient.from", "type": "variable"},
                {"key": "q", "value": "a b&c"}
            ],
            "headers": [
                {"key": "X-Env", "value": "prod", "type": "text"},
                {"key": "X-Event", "value": "type", "type": "variable"},
                {"key": "X-Missing", "value": "payload.nope", "type": "variable"}
            ],
            "body": [
                {"key": "chatId", "value": "chat.chatId", "type": "variable"},
                {"key": "media.url", "value": "chat.multimedia.url", "type": "variable"},
                {"key": "media.caption", "value": "payload.message.payload.caption", "type": "variable"},
                {"key": "user.first", "value": "payload.recipient.user.first_name", "type": "variable"},
                {"key": "tags[]", "value": "whatsapp"},
                {"key": "tags[]", "value": "channel", "type": "variable"},
                {"key": "user.info", "value": "payload.recipient.user.user_info", "type": "variable"},
                {"key": "absent", "value": "payload.nope", "type": "variable"}
            ]
        }),
    );
    assert_eq!(request.method, "PUT");
    assert_eq!(
        request.url,
        "https://crm.example/in?v=2&source=gateway&contact=91XXXXXX&q=a+b%26c"
    );
    assert_eq!(request.header("x-env"), Some("prod"));
    assert_eq!(request.header("x-event"), Some("whatsapp:message:in"));
    assert_eq!(request.header("x-missing"), Some(""));
    assert_eq!(
        body(&request),
        r#"{"chatId":"whatsapp:919019120xxx:91XXXXXX","media":{"url":"https://domin-name.com/your_image_path.png","caption":"some caption for image"},"user":{"first":"user first name","info":{"picture":"null","gender":"user-gender","title":"null"}},"tags":["whatsapp","whatsapp"],"absent":null}"#
    );
}

#[test]
fn get_sends_no_body() {
    let request = deliver(text_message(), json!({"method": "GET"}));
    assert!(request.body.is_empty());
    assert_eq!(request.header("content-type"), None);
}

#[test]
fn auth_styles() {
    let auth = |auth: Value| deliver(text_message(), json!({ "auth": auth }));

    let none = auth(json!({"type": "none"}));
    assert_eq!(none.header("authorization"), None);
    assert_eq!(none.url, "https://bot.example/hook");

    let bearer = auth(json!({"type": "bearer", "token": "tok-123"}));
    assert_eq!(bearer.header("authorization"), Some("Bearer tok-123"));

    let basic = auth(json!({"type": "basic", "username": "Aladdin", "password": "open sesame"}));
    assert_eq!(
        basic.header("authorization"),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );

    let header = auth(json!({"type": "api_key", "key": "X-Api-Key", "value": "k1"}));
    assert_eq!(header.header("x-api-key"), Some("k1"));
    assert_eq!(header.url, "https://bot.example/hook");

    let query = auth(json!({"type": "api_key", "key": "api key", "value": "k/1", "in": "query"}));
    assert_eq!(query.url, "https://bot.example/hook?api+key=k%2F1");
    assert_eq!(query.header("api key"), None);
}

#[test]
fn auth_header_wins_over_custom_header() {
    let request = deliver(
        text_message(),
        json!({
            "headers": [{"key": "Authorization", "value": "Bearer old"}],
            "auth": {"type": "bearer", "token": "new"}
        }),
    );
    assert_eq!(request.header("authorization"), Some("Bearer new"));
    assert_eq!(
        request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .count(),
        1
    );
}

#[test]
fn channel_filter_drops_other_channels() {
    let config = json!({"alias": "Support bot", "channels": ["sms", "whatsapp:919019120xxx"]});
    assert!(matches!(
        run(text_message(), config.clone()).unwrap(),
        Action::Deliver(_)
    ));
    assert!(matches!(
        run(text_message(), json!({"channels": ["WhatsApp"]})).unwrap(),
        Action::Deliver(_)
    ));

    let sms_only = json!({"alias": "Support bot", "channels": ["sms"]});
    assert_eq!(
        run(text_message(), sms_only).unwrap(),
        Action::drop(
            "Support bot: event came through whatsapp, whatsapp:919019120xxx, not a connected channel (sms)"
        )
    );
    let other_number = json!({"channels": ["whatsapp:000"]});
    assert!(matches!(
        run(text_message(), other_number).unwrap(),
        Action::Drop(_)
    ));
    let no_channel = Event::new("t", json!({}));
    assert_eq!(
        run(no_channel, json!({"channels": ["sms"]})).unwrap(),
        Action::drop(
            "chatbot-webhook: event came through no channel, not a connected channel (sms)"
        )
    );
}

#[test]
fn variable_line_break_in_header_fails() {
    let event = Event::new("t", json!({"evil": "x\r\nHost: y"}));
    let err = ChatbotWebhook::transform(
        event,
        gateway_request(),
        &json!({"headers": [{"key": "X-A", "value": "payload.evil", "type": "variable"}]}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "headers[0].value: would contain a line break"
    );
}

#[test]
fn bad_config_fails_transform_with_the_field() {
    let err = ChatbotWebhook::transform(
        text_message(),
        gateway_request(),
        &json!({"method": "PATCH"}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "method: expected one of POST, GET, PUT, DELETE"
    );
}

#[test]
fn base64_vectors() {
    for (input, output) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), output);
    }
}
