//! Signature checks written from the specs, independent of the gateway's code,
//! the way a receiver's Standard Webhooks library verifies a request.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Received;

fn key(secret: &str) -> Vec<u8> {
    STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("secret is base64")
}

/// True when one of the `v1,` signatures in `webhook-signature` is the HMAC of
/// `id.timestamp.body` under `secret`, and the timestamp is within 5 minutes.
pub fn verify_standard(secret: &str, request: &Received) -> bool {
    let (Some(id), Some(ts), Some(sigs)) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(ts_num) = ts.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - ts_num).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).expect("hmac");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&request.body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// True when `header` holds the hex HMAC-SHA256 of the raw body under `secret`'s key.
pub fn verify_hex(secret: &str, header: &str, request: &Received) -> bool {
    let Some(given) = request.header(header) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).expect("hmac");
    mac.update(&request.body);
    hex::encode(mac.finalize().into_bytes()) == given
}
