//! Client authentication: users with roles, as the node's config lists
//! them.
//!
//! A user has a name, a role ([`Role`]: `admin`, `readwrite` or
//! `readonly`, optionally limited to named buckets) and a secret, of which
//! the node keeps only an argon2id hash. [`Users`] checks a presented
//! secret (RESP `AUTH`, HTTP `Authorization`) and tells what the user may
//! do ([`User::allows`]). A node with no users configured serves everyone
//! (the `gyre demo` case; the binary refuses to listen beyond loopback like
//! that unless told to).
//!
//! Verifying an argon2 hash costs tens of milliseconds on purpose, so a
//! secret verified once is remembered (by its SHA-256, per user) and later
//! requests with it cost a hash lookup; failed attempts are slowed down per
//! address ([`Throttle`]).
//!
//! ```
//! use gyre_api::auth::{Access, Role, UserEntry, Users, generate_secret, hash_secret};
//! use gyre_types::BucketName;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let secret = generate_secret("app")?;
//! let users = Users::new(vec![UserEntry {
//!     name: "app".into(),
//!     role: Role::ReadWrite,
//!     buckets: Some(vec!["sessions".into()]),
//!     secret_hash: hash_secret(&secret)?,
//! }])?;
//! let user = users.check(Some("app"), secret.as_bytes()).await.expect("the right secret");
//! let sessions = BucketName::new("sessions")?;
//! assert!(user.allows(Access::Write(&sessions)));
//! assert!(!user.allows(Access::Admin));
//! // A bearer token alone names its user.
//! assert!(users.check(None, secret.as_bytes()).await.is_some());
//! assert!(users.check(Some("app"), b"app.wrong").await.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod gate;
mod role;
mod secret;
mod throttle;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use gyre_types::BucketName;

pub use gate::Gate;
pub use role::{Access, Role, User, UserEntry};
pub use secret::{generate_secret, hash_secret};
pub use throttle::Throttle;

/// Verified (user, secret digest) pairs remembered at most; past it the
/// memory starts again (and the next requests verify again).
const MAX_VERIFIED: usize = 4096;

/// Why users could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A user entry is not valid.
    #[error("user {name:?}: {reason}")]
    BadUser {
        /// The entry's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The system gave no randomness (for a secret or a salt).
    #[error("no randomness for a secret: {0}")]
    Random(String),
    /// Hashing a secret failed.
    #[error("cannot hash the secret: {0}")]
    Hash(String),
}

/// One known user: who, and the hash of their secret.
#[derive(Debug)]
struct Known {
    user: User,
    hash: Arc<str>,
}

/// The users a node knows, and the secrets it verified so far.
#[derive(Debug, Default)]
pub struct Users {
    users: HashMap<String, Known>,
    verified: Mutex<HashSet<(String, [u8; 32])>>,
}

impl Users {
    /// The users of `entries`.
    ///
    /// # Errors
    /// [`AuthError::BadUser`] for a bad or repeated name, a bad bucket name,
    /// buckets given to an admin, or a hash that is not a PHC string.
    pub fn new(entries: Vec<UserEntry>) -> Result<Self, AuthError> {
        let mut users = HashMap::with_capacity(entries.len());
        for e in entries {
            let bad = |reason: String| AuthError::BadUser {
                name: e.name.clone(),
                reason,
            };
            if !role::valid_name(&e.name) {
                return Err(bad(
                    "a name is 1 to 64 letters, digits, `_` or `-`".to_owned()
                ));
            }
            secret::check_hash(&e.secret_hash).map_err(&bad)?;
            let buckets = match (&e.buckets, e.role) {
                (Some(_), Role::Admin) => {
                    return Err(bad(
                        "an admin may do everything: give `buckets` to readwrite or readonly users"
                            .to_owned(),
                    ));
                }
                (Some(names), _) => Some(
                    names
                        .iter()
                        .map(|n| BucketName::new(n.clone()).map_err(|e| bad(e.to_string())))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                (None, _) => None,
            };
            let known = Known {
                user: User {
                    name: e.name.clone(),
                    role: e.role,
                    buckets,
                },
                hash: e.secret_hash.into(),
            };
            if users.insert(e.name.clone(), known).is_some() {
                return Err(bad("named twice".to_owned()));
            }
        }
        Ok(Self {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// The user `name`, for a client that proved it otherwise (a verified
    /// client certificate).
    pub fn get(&self, name: &str) -> Option<User> {
        self.users.get(name).map(|k| k.user.clone())
    }

    /// Whether no user is configured: every client is served, unchecked.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// The user whose secret `secret` is: user `name`, or, without a name
    /// (a bearer token), the user the secret names (`<name>.…`, as
    /// [`generate_secret`] makes them). `None` for an unknown user or a
    /// wrong secret. At most one hash is verified, off the async threads.
    pub async fn check(&self, name: Option<&str>, secret: &[u8]) -> Option<User> {
        let name = match name {
            Some(n) => n,
            None => {
                let dot = secret.iter().position(|&b| b == b'.')?;
                std::str::from_utf8(&secret[..dot]).ok()?
            }
        };
        let known = self.users.get(name)?;
        let digest = sha256(secret);
        let key = (name.to_owned(), digest);
        if self.verified().contains(&key) {
            return Some(known.user.clone());
        }
        let (hash, presented) = (Arc::clone(&known.hash), secret.to_vec());
        let ok = tokio::task::spawn_blocking(move || secret::verify(&presented, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return None;
        }
        let mut verified = self.verified();
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(key);
        Some(known.user.clone())
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashSet<(String, [u8; 32])>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, role: Role, buckets: Option<Vec<&str>>, secret: &str) -> UserEntry {
        UserEntry {
            name: name.into(),
            role,
            buckets: buckets.map(|b| b.into_iter().map(str::to_owned).collect()),
            secret_hash: hash_secret(secret).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        let cases = [
            (vec![entry("a b", Role::Admin, None, "s")], "a name is"),
            (
                vec![entry("a", Role::Admin, Some(vec!["x"]), "s")],
                "an admin may do everything",
            ),
            (
                vec![entry("a", Role::ReadOnly, Some(vec!["bad name!"]), "s")],
                "bucket",
            ),
            (
                vec![
                    entry("a", Role::Admin, None, "s"),
                    entry("a", Role::ReadOnly, None, "t"),
                ],
                "named twice",
            ),
            (
                vec![UserEntry {
                    name: "a".into(),
                    role: Role::Admin,
                    buckets: None,
                    secret_hash: "plain text".into(),
                }],
                "not a password hash",
            ),
        ];
        for (entries, want) in cases {
            let e = Users::new(entries).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[tokio::test]
    async fn a_secret_authenticates_its_user_only() {
        let users = Users::new(vec![
            entry("a", Role::Admin, None, "a.secret"),
            entry("b", Role::ReadOnly, None, "b.secret"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(users.len(), 2);
        for _ in 0..2 {
            // Twice: the second time from the verified set.
            let a = users.check(Some("a"), b"a.secret").await;
            assert_eq!(a.map(|u| u.role()), Some(Role::Admin));
        }
        assert!(users.check(Some("b"), b"a.secret").await.is_none());
        assert!(users.check(Some("c"), b"a.secret").await.is_none());
        assert!(users.check(Some("a"), b"a.secreT").await.is_none());
        assert_eq!(
            users
                .check(None, b"b.secret")
                .await
                .map(|u| u.name().to_owned()),
            Some("b".to_owned())
        );
        assert!(users.check(None, b"nodot").await.is_none());
        assert!(Users::default().is_empty());
    }
}
