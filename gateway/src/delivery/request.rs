//! Building the request a delivery sends (pure): the endpoint's base request
//! before plugins, and the signature headers added after them.

use bytes::Bytes;

use super::client::Outgoing;
use super::signing;
use crate::model::endpoint::{Endpoint, SignatureStyle};

/// The request before plugins: the endpoint's method, url and headers, the payload as a JSON body.
pub fn base_request(endpoint: &Endpoint, payload: &str) -> Outgoing {
    let mut headers = Vec::with_capacity(endpoint.headers.len() + 4);
    let body = if endpoint.method.has_body() {
        headers.push(("content-type".to_string(), "application/json".to_string()));
        Bytes::copy_from_slice(payload.as_bytes())
    } else {
        Bytes::new()
    };
    headers.extend(endpoint.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    Outgoing {
        method: endpoint.method.as_str().to_string(),
        url: endpoint.url.clone(),
        headers,
        body,
    }
}

/// Adds the signature headers over the final body. `secrets` are the endpoint's valid
/// secrets, current first; `timestamp` is the attempt's Unix time in seconds.
pub fn sign(
    request: &mut Outgoing,
    style: &SignatureStyle,
    secrets: &[&str],
    msg_id: &str,
    timestamp: i64,
) {
    request.headers.retain(|(name, _)| {
        let name = name.to_ascii_lowercase();
        !name.starts_with("webhook-")
            && !matches!(style, SignatureStyle::HmacSha256Hex { header } if header.eq_ignore_ascii_case(&name))
    });
    let signature = signing::standard_header(secrets, msg_id, timestamp, &request.body);
    request
        .headers
        .push(("webhook-id".into(), msg_id.to_string()));
    request
        .headers
        .push(("webhook-timestamp".into(), timestamp.to_string()));
    request
        .headers
        .push(("webhook-signature".into(), signature));
    if let SignatureStyle::HmacSha256Hex { header } = style {
        if let Some(hex) = secrets
            .first()
            .and_then(|s| signing::hex_signature(s, &request.body))
        {
            request.headers.push((header.clone(), hex));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::endpoint::HttpMethod;

    fn endpoint(method: HttpMethod, style: SignatureStyle) -> Endpoint {
        Endpoint {
            method,
            signature: style,
            headers: [("X-Tenant".to_string(), "acme".to_string())].into(),
            ..Endpoint::sample("ep_1")
        }
    }

    fn header<'a>(r: &'a Outgoing, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn post_carries_the_payload_and_custom_headers() {
        let ep = endpoint(HttpMethod::Post, SignatureStyle::Standard);
        let r = base_request(&ep, r#"{"a":1}"#);
        assert_eq!(r.method, "POST");
        assert_eq!(&r.body[..], br#"{"a":1}"#);
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(header(&r, "x-tenant"), Some("acme"));
    }

    #[test]
    fn get_sends_no_body() {
        let r = base_request(
            &endpoint(HttpMethod::Get, SignatureStyle::Standard),
            r#"{"a":1}"#,
        );
        assert!(r.body.is_empty());
        assert_eq!(header(&r, "content-type"), None);
    }

    #[test]
    fn signing_matches_the_spec_vector_and_adds_hex_when_asked() {
        let ep = endpoint(
            HttpMethod::Post,
            SignatureStyle::HmacSha256Hex {
                header: "x-gallabox-signature".into(),
            },
        );
        let mut r = base_request(&ep, r#"{"test": 2432232314}"#);
        sign(
            &mut r,
            &ep.signature,
            &[ep.secret.as_str()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
        );
        assert_eq!(
            header(&r, "webhook-signature"),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(
            header(&r, "webhook-id"),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        let hex = signing::hex_signature(&ep.secret, br#"{"test": 2432232314}"#);
        assert_eq!(header(&r, "x-gallabox-signature"), hex.as_deref());
        // signing twice (a retry) replaces, never duplicates
        sign(
            &mut r,
            &ep.signature,
            &[ep.secret.as_str()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
        );
        assert_eq!(
            r.headers
                .iter()
                .filter(|(n, _)| n == "webhook-signature")
                .count(),
            1
        );
    }
}
