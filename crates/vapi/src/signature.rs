//! How a webhook message is signed (`X-Vapi-Signature`): the listener checks it, the
//! simulator makes it.

/// Hex HMAC-SHA256 of "{timestamp}.{body}" under `secret`.
pub fn webhook_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}
