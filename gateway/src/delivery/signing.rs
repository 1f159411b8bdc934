//! Request signing (pure): Standard Webhooks and plain hex HMAC-SHA256.
//!
//! Standard Webhooks signs `"{id}.{timestamp}.{body}"` with the base64-decoded
//! part of a `whsec_` secret and sends `webhook-signature: v1,<base64>`; during
//! a rotation every valid secret signs and the signatures are space-separated.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of every endpoint secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A secret that is not `whsec_` followed by base64 of 24 to 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be `whsec_` followed by base64 of 24 to 64 random bytes")]
pub struct BadSecret;

/// A new random secret: `whsec_` + base64 of 24 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", BASE64.encode(bytes))
}

/// The HMAC key of a `whsec_` secret.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, BadSecret> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
    let key = BASE64.decode(encoded).map_err(|_| BadSecret)?;
    if !(24..=64).contains(&key.len()) {
        return Err(BadSecret);
    }
    Ok(key)
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// One `v1,<base64>` signature of a Standard Webhooks message.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header value: one signature per valid secret, space-separated.
/// Secrets that do not decode are skipped (they were validated when stored).
pub fn standard_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| decode_secret(s).ok())
        .map(|key| standard_signature(&key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hex HMAC-SHA256 of the raw body, keyed by the secret's decoded bytes.
pub fn hex_signature(secret: &str, body: &[u8]) -> Option<String> {
    let key = decode_secret(secret).ok()?;
    let mut mac = mac(&key);
    mac.update(body);
    Some(hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_standard_webhooks_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = standard_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotation_signs_with_every_secret() {
        let a = generate_secret();
        let b = generate_secret();
        let header = standard_header(&[&a, &b], "msg_1", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            standard_signature(&decode_secret(&a).unwrap(), "msg_1", 1, b"{}")
        );
        assert_eq!(
            parts[1],
            standard_signature(&decode_secret(&b).unwrap(), "msg_1", 1, b"{}")
        );
    }

    #[test]
    fn generated_secrets_decode_to_24_bytes() {
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(decode_secret(&secret).unwrap().len(), 24);
        assert_ne!(secret, generate_secret());
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_secret("whsec_%%%").is_err());
        assert!(decode_secret("whsec_c2hvcnQ=").is_err());
    }

    #[test]
    fn hex_signature_is_hmac_of_the_body() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = hex_signature(secret, b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        assert!(sig.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(sig, hex_signature(secret, b"hello!").unwrap());
    }
}
