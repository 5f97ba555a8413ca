//! Secrets: generated high-entropy, stored only as argon2id hashes (PHC
//! strings), compared by verifying against the hash.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::AuthError;

/// A new secret for user `name`: `<name>.<32 random characters>`. Naming
/// the user lets a bearer token alone find whose it is, so that a wrong
/// token costs one hash verification, not one per user.
///
/// # Errors
/// [`AuthError::Random`] if the system has no randomness to give.
pub fn generate_secret(name: &str) -> Result<String, AuthError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(format!("{name}.{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The hash to store for `secret`: argon2id with its default cost (19 MiB,
/// two passes) and a random salt, as a PHC string.
///
/// # Errors
/// [`AuthError::Random`] without randomness for the salt; [`AuthError::Hash`]
/// if hashing fails.
pub fn hash_secret(secret: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks that `hash` is a PHC string this node can verify.
pub(crate) fn check_hash(hash: &str) -> Result<(), String> {
    PasswordHash::new(hash)
        .map(|_| ())
        .map_err(|e| format!("not a password hash (PHC string): {e}"))
}

/// Whether `secret` is the one `hash` was made from.
pub(crate) fn verify(secret: &[u8], hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(secret, &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_secret_and_nothing_else() {
        let secret = generate_secret("app").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            secret.starts_with("app.") && secret.len() == 4 + 32,
            "{secret}"
        );
        let hash = hash_secret(&secret).unwrap_or_else(|e| panic!("{e}"));
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        check_hash(&hash).unwrap_or_else(|e| panic!("{e}"));
        assert!(verify(secret.as_bytes(), &hash));
        assert!(!verify(b"app.wrong", &hash));
        assert!(!verify(secret.as_bytes(), "not a hash"));
        // A fresh salt each time.
        assert_ne!(hash, hash_secret(&secret).unwrap_or_else(|e| panic!("{e}")));
    }
}
