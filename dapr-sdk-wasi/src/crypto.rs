//! Cryptography (alpha): encrypt and decrypt through a crypto component
//! (`crypto.dapr.localstorage`, a key vault, …), whose keys never leave it.
//! Dapr's HTTP API takes the data as the body and the options as headers
//! (`PUT /v1.0-alpha1/crypto/{name}/encrypt|decrypt`), and answers with the
//! data in Dapr's encryption scheme (v1); the key wraps a fresh data key.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;

/// How to encrypt: the key to wrap the data key with, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptOptions {
    /// The key's name in the component.
    pub key_name: String,
    /// The algorithm that wraps the data key: `RSA-OAEP-256` for an RSA
    /// key, `A256KW` for an AES one, and so on (Dapr's names).
    pub key_wrap_algorithm: String,
    /// The data cipher: `aes-gcm` (Dapr's default) or `chacha20-poly1305`.
    pub data_encryption_cipher: Option<String>,
    /// Leave the key's name out of the result, so decrypting needs it.
    pub omit_decryption_key_name: bool,
    /// Name the result with another key name (one that can decrypt it).
    pub decryption_key_name: Option<String>,
}

impl EncryptOptions {
    /// Wraps with `key_name` using `algorithm`; the rest as Dapr's defaults.
    pub fn new(key_name: impl Into<String>, algorithm: impl Into<String>) -> Self {
        Self {
            key_name: key_name.into(),
            key_wrap_algorithm: algorithm.into(),
            data_encryption_cipher: None,
            omit_decryption_key_name: false,
            decryption_key_name: None,
        }
    }
}

/// `PUT /v1.0-alpha1/crypto/{component}/encrypt` with the plaintext.
pub fn encrypt_request(
    component: &str,
    plaintext: &[u8],
    o: &EncryptOptions,
) -> Result<DaprRequest> {
    non_empty("crypto component", component)?;
    non_empty("key name", &o.key_name)?;
    non_empty("key wrap algorithm", &o.key_wrap_algorithm)?;
    let mut r = DaprRequest::new(
        Method::PUT,
        path("/v1.0-alpha1/crypto", &[component, "encrypt"], &[]),
    )
    .header("content-type", "application/octet-stream")?
    .header("dapr-key-name", &o.key_name)?
    .header("dapr-key-wrap-algorithm", &o.key_wrap_algorithm)?;
    if let Some(c) = &o.data_encryption_cipher {
        r = r.header("dapr-data-encryption-cipher", c)?;
    }
    if o.omit_decryption_key_name {
        r = r.header("dapr-omit-decryption-key-name", "true")?;
    }
    if let Some(k) = &o.decryption_key_name {
        r = r.header("dapr-decryption-key-name", k)?;
    }
    r.body = plaintext.to_vec();
    Ok(r)
}

/// `PUT /v1.0-alpha1/crypto/{component}/decrypt` with the ciphertext; the
/// key's name only if encryption left it out.
pub fn decrypt_request(
    component: &str,
    ciphertext: &[u8],
    key_name: Option<&str>,
) -> Result<DaprRequest> {
    non_empty("crypto component", component)?;
    let mut r = DaprRequest::new(
        Method::PUT,
        path("/v1.0-alpha1/crypto", &[component, "decrypt"], &[]),
    )
    .header("content-type", "application/octet-stream")?;
    if let Some(k) = key_name {
        non_empty("key name", k)?;
        r = r.header("dapr-key-name", k)?;
    }
    r.body = ciphertext.to_vec();
    Ok(r)
}

/// The data of a 2xx answer, else Dapr's error (for example
/// `ERR_CRYPTO_KEY` for a key the component does not have).
pub fn decode_data(status: u16, body: Vec<u8>) -> Result<Vec<u8>> {
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(Error::from_response(status, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypt_sends_the_data_as_body_and_the_options_as_headers() {
        let mut o = EncryptOptions::new("rsa-key", "RSA-OAEP-256");
        let r = encrypt_request("vault", b"secret bytes", &o).expect("request");
        assert_eq!(r.method, Method::PUT);
        assert_eq!(r.path_and_query, "/v1.0-alpha1/crypto/vault/encrypt");
        assert_eq!(r.body, b"secret bytes");
        assert_eq!(r.headers["dapr-key-name"], "rsa-key");
        assert_eq!(r.headers["dapr-key-wrap-algorithm"], "RSA-OAEP-256");
        assert!(r.headers.get("dapr-omit-decryption-key-name").is_none());
        o.data_encryption_cipher = Some("chacha20-poly1305".into());
        o.omit_decryption_key_name = true;
        let r = encrypt_request("vault", b"", &o).expect("request");
        assert_eq!(
            r.headers["dapr-data-encryption-cipher"],
            "chacha20-poly1305"
        );
        assert_eq!(r.headers["dapr-omit-decryption-key-name"], "true");
    }

    #[test]
    fn decrypt_names_the_key_only_when_asked() {
        let r = decrypt_request("vault", b"ct", None).expect("request");
        assert_eq!(r.path_and_query, "/v1.0-alpha1/crypto/vault/decrypt");
        assert!(r.headers.get("dapr-key-name").is_none());
        let r = decrypt_request("vault", b"ct", Some("k")).expect("request");
        assert_eq!(r.headers["dapr-key-name"], "k");
    }

    #[test]
    fn missing_names_and_error_answers_are_errors() {
        assert!(encrypt_request("", b"x", &EncryptOptions::new("k", "A256KW")).is_err());
        assert!(encrypt_request("v", b"x", &EncryptOptions::new("", "A256KW")).is_err());
        assert!(decrypt_request("v", b"x", Some("")).is_err());
        let e = decode_data(
            500,
            br#"{"errorCode":"ERR_CRYPTO","message":"failed to perform operation: key not found"}"#
                .to_vec(),
        )
        .expect_err("error");
        assert_eq!(e.error_code(), Some("ERR_CRYPTO"));
        assert_eq!(decode_data(200, b"pt".to_vec()).expect("data"), b"pt");
    }
}
