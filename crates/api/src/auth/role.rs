//! Roles, what each allows, and a user as the node's config names it.

use std::fmt;

use gyre_types::BucketName;
use serde::{Deserialize, Serialize};

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: keys, bucket properties, layout changes, a node's own
    /// replica.
    Admin,
    /// Read and write keys.
    ReadWrite,
    /// Read keys.
    ReadOnly,
}

impl Role {
    /// The role's name, as the config writes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::ReadWrite => "readwrite",
            Self::ReadOnly => "readonly",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Self::Admin),
            "readwrite" => Ok(Self::ReadWrite),
            "readonly" => Ok(Self::ReadOnly),
            other => Err(format!(
                "unknown role {other:?}: admin, readwrite or readonly"
            )),
        }
    }
}

/// What a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access<'a> {
    /// Any authenticated user: the cluster's status, the bucket list,
    /// connection commands.
    Known,
    /// Reading keys of a bucket.
    Read(&'a BucketName),
    /// Writing (or deleting, incrementing) keys of a bucket.
    Write(&'a BucketName),
    /// Changing buckets or the layout, reading a node's own replica.
    Admin,
}

impl fmt::Display for Access<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known => f.write_str("any user"),
            Self::Read(b) => write!(f, "reading bucket '{b}'"),
            Self::Write(b) => write!(f, "writing bucket '{b}'"),
            Self::Admin => f.write_str("the admin role"),
        }
    }
}

/// A user as the node's config holds it: `[[users]]` in the config file
/// (or the users file it points to). `gyre user add` prints one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// The name: letters, digits, `_` and `-`.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// For `readwrite` and `readonly`: the only buckets the user may touch
    /// (absent: every bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<String>>,
    /// The secret, hashed (a PHC string: `$argon2id$...`).
    pub secret_hash: String,
}

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) buckets: Option<Vec<BucketName>>,
}

impl User {
    /// The user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the user may do what `access` names.
    pub fn allows(&self, access: Access<'_>) -> bool {
        let in_scope = |b: &BucketName| self.buckets.as_ref().is_none_or(|s| s.contains(b));
        match (self.role, access) {
            (Role::Admin, _) | (_, Access::Known) => true,
            (_, Access::Admin) => false,
            (Role::ReadWrite, Access::Read(b) | Access::Write(b)) => in_scope(b),
            (Role::ReadOnly, Access::Read(b)) => in_scope(b),
            (Role::ReadOnly, Access::Write(_)) => false,
        }
    }
}

/// Whether `name` may name a user: 1 to 64 of letters, digits, `_`, `-`.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, buckets: Option<&[&str]>) -> User {
        User {
            name: "u".into(),
            role,
            buckets: buckets.map(|b| {
                b.iter()
                    .map(|n| BucketName::new(*n).unwrap_or_else(|e| panic!("{e}")))
                    .collect()
            }),
        }
    }

    #[test]
    fn each_role_allows_what_it_says_and_no_more() {
        let (a, b) = (
            BucketName::new("a").unwrap_or_else(|e| panic!("{e}")),
            BucketName::new("b").unwrap_or_else(|e| panic!("{e}")),
        );
        let table = [
            (Role::Admin, None, [true, true, true, true, true]),
            (Role::ReadWrite, None, [true, true, true, true, false]),
            (Role::ReadOnly, None, [true, true, false, true, false]),
            (
                Role::ReadWrite,
                Some(&["a"][..]),
                [true, true, true, false, false],
            ),
            (
                Role::ReadOnly,
                Some(&["a"][..]),
                [true, true, false, false, false],
            ),
        ];
        for (role, scope, want) in table {
            let u = user(role, scope);
            let got = [
                u.allows(Access::Known),
                u.allows(Access::Read(&a)),
                u.allows(Access::Write(&a)),
                u.allows(Access::Read(&b)),
                u.allows(Access::Admin),
            ];
            assert_eq!(got, want, "{role} scoped to {scope:?}");
        }
    }

    #[test]
    fn names_are_plain() {
        assert!(valid_name("app-1_x"));
        for bad in ["", "a b", "a.b", "a:b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
