//! [`Gate`]: what both front ends ask before they serve a client: who it
//! is (a secret checked, failures slowed down per address) and whether it
//! may.

use std::net::IpAddr;

use super::{Throttle, User, Users};

/// The users and the failure throttle, shared by every connection of both
/// front ends.
#[derive(Debug, Default)]
pub struct Gate {
    users: Users,
    throttle: Throttle,
    open_metrics: bool,
}

impl Gate {
    /// No users: every client is served, unchecked (a node on loopback,
    /// `gyre demo`, or an operator's explicit `--insecure-no-auth`).
    pub fn open() -> Self {
        Self {
            open_metrics: true,
            ..Self::default()
        }
    }

    /// Checks clients against `users`. `open_metrics`: `GET /metrics`
    /// needs no credential (Prometheus scrapes it).
    pub fn new(users: Users, open_metrics: bool) -> Self {
        Self {
            users,
            throttle: Throttle::default(),
            open_metrics,
        }
    }

    /// The user a verified client certificate names, if the config has it
    /// (a certificate for a user not configured authenticates nobody).
    pub fn certified(&self, name: &str) -> Option<User> {
        let user = self.users.get(name);
        if user.is_none() {
            tracing::warn!(user = name, "a client certificate names no configured user");
        }
        user
    }

    /// Whether every client is served unchecked.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `/metrics` is served without a credential.
    pub fn open_metrics(&self) -> bool {
        self.open_metrics || self.is_open()
    }

    /// The user `secret` authenticates (see [`Users::check`]), after the
    /// delay `from`'s recent failures earned; `None` on failure, which is
    /// logged (the user's name, never the secret) and counted against
    /// `from`.
    pub async fn login(&self, from: IpAddr, name: Option<&str>, secret: &[u8]) -> Option<User> {
        let delay = self.throttle.delay(from);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match self.users.check(name, secret).await {
            Some(user) => {
                self.throttle.succeeded(from);
                Some(user)
            }
            None => {
                self.throttle.failed(from);
                tracing::warn!(
                    client = %from,
                    user = name.unwrap_or("(named by the token)"),
                    "authentication failed"
                );
                None
            }
        }
    }
}
