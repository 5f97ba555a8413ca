//! Expiry over RESP: `SET`'s options, `SETEX`, the `EXPIRE` family, `TTL`
//! and its relatives, `PERSIST`, `GETEX`, and the string commands that read
//! before they write (`GETSET`, `GETDEL`).
//!
//! An expiry is a property of the version a write makes (see
//! [`gyre_wire::Expiry`]): `SET k v EX 10` is one blind write whose value
//! expires ten seconds after the coordinator stamps it. Commands that change
//! the expiry of what is there (`EXPIRE`, `PERSIST`, `GETEX … EX`) read the
//! key and write its value back with the read's context and the new expiry:
//! a new version, which supersedes every sibling the read saw (the value
//! kept is the one `GET` shows). A time in the past deletes the key (a
//! tombstone, with the read's context), as Redis does.
//!
//! Conditions (`SET … NX|XX`, `EXPIRE … NX|XX|GT|LT`) are checked against a
//! quorum read and then written with its context: they are not atomic. Two
//! clients racing `SET k v NX` may both succeed, and their writes become
//! siblings (`GYRE.GET` shows both); nothing is lost.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gyre_types::{BucketName, Key};
use gyre_wire::{ClientOp, Expiry};

use super::command::{Fail, Read, Server, Session, err, key, not_integer, syntax_error};
use super::parse::{self, Args};
use super::reply::Out;
use crate::{Backend, KvError};

/// Milliseconds since the Unix epoch, by this node's clock.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How a command states a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Seconds from now (`EX`, `EXPIRE`).
    Seconds,
    /// Milliseconds from now (`PX`, `PEXPIRE`).
    Millis,
    /// Unix time in seconds (`EXAT`, `EXPIREAT`).
    UnixSeconds,
    /// Unix time in milliseconds (`PXAT`, `PEXPIREAT`).
    UnixMillis,
}

impl Unit {
    /// The option naming this unit in `SET` and `GETEX`.
    fn of_option(option: &[u8]) -> Option<Self> {
        [
            (&b"EX"[..], Self::Seconds),
            (b"PX", Self::Millis),
            (b"EXAT", Self::UnixSeconds),
            (b"PXAT", Self::UnixMillis),
        ]
        .into_iter()
        .find(|(name, _)| option.eq_ignore_ascii_case(name))
        .map(|(_, unit)| unit)
    }

    /// The absolute time `n` of this unit names, in Unix milliseconds, when
    /// it is now `now_ms`; `None` if it overflows.
    fn absolute_ms(self, n: i64, now_ms: u64) -> Option<i64> {
        let now = i64::try_from(now_ms).ok()?;
        match self {
            Self::Seconds => n.checked_mul(1000)?.checked_add(now),
            Self::Millis => n.checked_add(now),
            Self::UnixSeconds => n.checked_mul(1000),
            Self::UnixMillis => Some(n),
        }
    }

    /// What a write carries for a time `n` of this unit: relative times stay
    /// relative (the coordinator counts from its stamp), absolute ones are
    /// absolute. `n` is positive.
    fn expiry(self, n: i64) -> Option<Expiry> {
        let n = u64::try_from(n).ok()?;
        Some(match self {
            Self::Seconds => Expiry::After {
                ms: n.checked_mul(1000)?,
            },
            Self::Millis => Expiry::After { ms: n },
            Self::UnixSeconds => Expiry::At {
                unix_ms: n.checked_mul(1000)?,
            },
            Self::UnixMillis => Expiry::At { unix_ms: n },
        })
    }
}

fn invalid_expire_time(command: &str) -> Fail {
    err(format!("ERR invalid expire time in '{command}' command"))
}

/// The expiry of a `SET`/`SETEX`/`GETEX` time argument: positive, and not so
/// large that it overflows (Redis's rules and message).
pub(crate) fn checked_expiry(unit: Unit, arg: &[u8], command: &str) -> Result<Expiry, Fail> {
    let n = parse::integer(arg).ok_or_else(not_integer)?;
    if n <= 0 || unit.absolute_ms(n, now_ms()).is_none() {
        return Err(invalid_expire_time(command));
    }
    unit.expiry(n).ok_or_else(|| invalid_expire_time(command))
}

/// `SET`'s condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition {
    /// `NX`: only if the key has no value.
    Absent,
    /// `XX`: only if it has one.
    Present,
}

/// The options of `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SetOptions {
    condition: Option<Condition>,
    get: bool,
    expiry: Expiry,
}

fn set_options(args: Args<'_>) -> Result<SetOptions, Fail> {
    let mut options = SetOptions {
        condition: None,
        get: false,
        expiry: Expiry::Default,
    };
    let mut expiry_set = false;
    let mut i = 3;
    while i < args.len() {
        let option = args.get(i);
        let mut set_expiry = |expiry| {
            if expiry_set {
                return Err(syntax_error());
            }
            expiry_set = true;
            options.expiry = expiry;
            Ok(())
        };
        if let Some(unit) = Unit::of_option(option) {
            let value = args.get(i + 1);
            if i + 1 >= args.len() {
                return Err(syntax_error());
            }
            set_expiry(checked_expiry(unit, value, "set")?)?;
            i += 2;
            continue;
        }
        if option.eq_ignore_ascii_case(b"KEEPTTL") {
            set_expiry(Expiry::Keep)?;
        } else if option.eq_ignore_ascii_case(b"NX") || option.eq_ignore_ascii_case(b"XX") {
            if options.condition.is_some() {
                return Err(syntax_error());
            }
            options.condition = Some(if option.eq_ignore_ascii_case(b"NX") {
                Condition::Absent
            } else {
                Condition::Present
            });
        } else if option.eq_ignore_ascii_case(b"GET") {
            options.get = true;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    Ok(options)
}

/// What `TTL` and its relatives answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TtlQuery {
    /// `TTL`: seconds left.
    Seconds,
    /// `PTTL`: milliseconds left.
    Millis,
    /// `EXPIRETIME`: the expiry, Unix seconds.
    UnixSeconds,
    /// `PEXPIRETIME`: the expiry, Unix milliseconds.
    UnixMillis,
}

impl TtlQuery {
    /// The answer for a key whose latest value expires at `expires` (Unix
    /// ms; `None`: never, -1), read at `now`. A key read as present whose
    /// expiry this clock has passed (the coordinator's clock lags) has 0
    /// left.
    fn answer(self, expires: Option<u64>, now: u64) -> i64 {
        let Some(at) = expires else {
            return -1;
        };
        let left = at.saturating_sub(now);
        let n = match self {
            // Redis rounds seconds to the nearest.
            Self::Seconds => left.saturating_add(500) / 1000,
            Self::Millis => left,
            Self::UnixSeconds => at / 1000,
            Self::UnixMillis => at,
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }
}

/// `EXPIRE`'s condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpireCondition {
    /// `NX`: only if the key has no expiry.
    NoExpiry,
    /// `XX`: only if it has one.
    HasExpiry,
    /// `GT`: only if the new expiry is later (no expiry counts as infinite).
    Later,
    /// `LT`: only if it is earlier.
    Earlier,
}

impl ExpireCondition {
    fn parse(arg: &[u8]) -> Result<Self, Fail> {
        [
            (&b"NX"[..], Self::NoExpiry),
            (b"XX", Self::HasExpiry),
            (b"GT", Self::Later),
            (b"LT", Self::Earlier),
        ]
        .into_iter()
        .find(|(name, _)| arg.eq_ignore_ascii_case(name))
        .map(|(_, c)| c)
        .ok_or_else(|| {
            err(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(super::command::truncated(arg, 64))
            ))
        })
    }

    /// Whether a key expiring at `current` (`None`: never) may get `new`.
    fn allows(self, current: Option<u64>, new: i64) -> bool {
        let new = u64::try_from(new).unwrap_or(0);
        match self {
            Self::NoExpiry => current.is_none(),
            Self::HasExpiry => current.is_some(),
            Self::Later => current.is_some_and(|c| new > c),
            Self::Earlier => current.is_none_or(|c| new < c),
        }
    }
}

impl<B: Backend> Server<B> {
    /// A put of `value` with `context` (blind without) and `expiry`.
    async fn put(
        &self,
        bucket: &BucketName,
        key: Key,
        context: Option<Bytes>,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<Bytes, KvError> {
        self.write(ClientOp::Put {
            bucket: bucket.clone(),
            key,
            context,
            value,
            w: None,
            expiry,
        })
        .await
    }

    /// A delete with the context of `read`.
    async fn delete_read(
        &self,
        bucket: &BucketName,
        key: Key,
        read: &Read,
    ) -> Result<Bytes, KvError> {
        self.write(ClientOp::Delete {
            bucket: bucket.clone(),
            key,
            context: Some(read.context.clone()),
            w: None,
        })
        .await
    }

    /// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`.
    pub(crate) async fn set(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let options = set_options(args)?;
        let key = key(args.get(1))?;
        let value = Bytes::copy_from_slice(args.get(2));
        let bucket = &session.bucket;
        if options.condition.is_none() && !options.get {
            self.put(bucket, key, None, value, options.expiry).await?;
            out.ok();
            return Ok(());
        }
        let read = self.read(bucket, key.clone(), None).await?;
        let old = read.latest().cloned();
        let allowed = match options.condition {
            None => true,
            Some(Condition::Absent) => old.is_none(),
            Some(Condition::Present) => old.is_some(),
        };
        if allowed {
            self.put(
                bucket,
                key,
                Some(read.context.clone()),
                value,
                options.expiry,
            )
            .await?;
        }
        if options.get {
            out.bulk_or_null(old.as_deref());
        } else if allowed {
            out.ok();
        } else {
            out.null();
        }
        Ok(())
    }

    /// `SETEX key seconds value`, `PSETEX key milliseconds value`.
    pub(crate) async fn set_expiring(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
        unit: Unit,
        command: &str,
    ) -> Result<(), Fail> {
        let expiry = checked_expiry(unit, args.get(2), command)?;
        let key = key(args.get(1))?;
        let value = Bytes::copy_from_slice(args.get(3));
        self.put(&session.bucket, key, None, value, expiry).await?;
        out.ok();
        Ok(())
    }

    /// `EXPIRE key n [NX|XX|GT|LT]` and `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`:
    /// 1 if the expiry was set, 0 if the key has no value or the condition
    /// did not hold.
    pub(crate) async fn expire(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
        unit: Unit,
        command: &str,
    ) -> Result<(), Fail> {
        let n = parse::integer(args.get(2)).ok_or_else(not_integer)?;
        let condition = match args.len() {
            3 => None,
            _ => Some(ExpireCondition::parse(args.get(3))?),
        };
        let now = now_ms();
        let at = unit
            .absolute_ms(n, now)
            .ok_or_else(|| invalid_expire_time(command))?;
        let key = key(args.get(1))?;
        let bucket = &session.bucket;
        let read = self.read(bucket, key.clone(), None).await?;
        let (Some(value), Some(current)) = (read.latest().cloned(), read.latest_expires()) else {
            out.integer(0);
            return Ok(());
        };
        if condition.is_some_and(|c| !c.allows(current, at)) {
            out.integer(0);
            return Ok(());
        }
        if at <= i64::try_from(now).unwrap_or(i64::MAX) {
            // In the past: Redis deletes the key.
            self.delete_read(bucket, key, &read).await?;
        } else {
            let expiry = unit.expiry(n).ok_or_else(|| invalid_expire_time(command))?;
            self.put(bucket, key, Some(read.context.clone()), value, expiry)
                .await?;
        }
        out.integer(1);
        Ok(())
    }

    /// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`: -2 for a key without a
    /// value, -1 for one that never expires.
    pub(crate) async fn ttl(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
        query: TtlQuery,
    ) -> Result<(), Fail> {
        let key = key(args.get(1))?;
        let read = self.read(&session.bucket, key, None).await?;
        out.integer(match read.latest_expires() {
            None => -2,
            Some(expires) => query.answer(expires, now_ms()),
        });
        Ok(())
    }

    /// `PERSIST key`: 1 if the key had an expiry and now has none.
    pub(crate) async fn persist(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let key = key(args.get(1))?;
        let bucket = &session.bucket;
        let read = self.read(bucket, key.clone(), None).await?;
        match (read.latest().cloned(), read.latest_expires()) {
            (Some(value), Some(Some(_))) => {
                self.put(
                    bucket,
                    key,
                    Some(read.context.clone()),
                    value,
                    Expiry::Never,
                )
                .await?;
                out.integer(1);
            }
            _ => out.integer(0),
        }
        Ok(())
    }

    /// `GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]`: the value, and its
    /// expiry changed if an option says so.
    pub(crate) async fn getex(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let change = match args.len() {
            2 => None,
            3 if args.get(2).eq_ignore_ascii_case(b"PERSIST") => Some(Expiry::Never),
            4 => {
                let unit = Unit::of_option(args.get(2)).ok_or_else(syntax_error)?;
                Some(checked_expiry(unit, args.get(3), "getex")?)
            }
            _ => return Err(syntax_error()),
        };
        let key = key(args.get(1))?;
        let bucket = &session.bucket;
        let read = self.read(bucket, key.clone(), None).await?;
        let value = read.latest().cloned();
        if let (Some(expiry), Some(v)) = (change, &value) {
            self.put(bucket, key, Some(read.context.clone()), v.clone(), expiry)
                .await?;
        }
        out.bulk_or_null(value.as_deref());
        Ok(())
    }

    /// `GETDEL key`: the value, and the key deleted (with the read's
    /// context).
    pub(crate) async fn getdel(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let key = key(args.get(1))?;
        let bucket = &session.bucket;
        let read = self.read(bucket, key.clone(), None).await?;
        let value = read.latest().cloned();
        if value.is_some() {
            self.delete_read(bucket, key, &read).await?;
        }
        out.bulk_or_null(value.as_deref());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_turn_into_relative_or_absolute_expiries() {
        assert_eq!(Unit::Seconds.expiry(10), Some(Expiry::After { ms: 10_000 }));
        assert_eq!(Unit::Millis.expiry(10), Some(Expiry::After { ms: 10 }));
        assert_eq!(
            Unit::UnixSeconds.expiry(10),
            Some(Expiry::At { unix_ms: 10_000 })
        );
        assert_eq!(
            Unit::UnixMillis.expiry(10),
            Some(Expiry::At { unix_ms: 10 })
        );
        assert_eq!(Unit::Seconds.expiry(i64::MAX), None);
        assert_eq!(Unit::Seconds.absolute_ms(2, 1_000), Some(3_000));
        assert_eq!(Unit::UnixSeconds.absolute_ms(2, 1_000), Some(2_000));
        assert_eq!(Unit::Seconds.absolute_ms(i64::MAX / 10, 0), None);
    }

    #[test]
    fn ttl_answers_round_as_redis_does() {
        assert_eq!(TtlQuery::Seconds.answer(None, 0), -1);
        assert_eq!(TtlQuery::Seconds.answer(Some(10_499), 0), 10);
        assert_eq!(TtlQuery::Seconds.answer(Some(10_500), 0), 11);
        assert_eq!(TtlQuery::Millis.answer(Some(10_500), 500), 10_000);
        // A clock that already passed the expiry: nothing left, never negative.
        assert_eq!(TtlQuery::Millis.answer(Some(5), 10), 0);
        assert_eq!(TtlQuery::UnixSeconds.answer(Some(12_345), 0), 12);
        assert_eq!(TtlQuery::UnixMillis.answer(Some(12_345), 0), 12_345);
    }

    #[test]
    fn expire_conditions_treat_no_expiry_as_infinite() {
        use ExpireCondition::{Earlier, HasExpiry, Later, NoExpiry};
        assert!(NoExpiry.allows(None, 5));
        assert!(!NoExpiry.allows(Some(1), 5));
        assert!(HasExpiry.allows(Some(1), 5));
        assert!(!HasExpiry.allows(None, 5));
        assert!(Later.allows(Some(1), 5));
        assert!(!Later.allows(Some(9), 5));
        assert!(!Later.allows(None, 5));
        assert!(Earlier.allows(None, 5));
        assert!(Earlier.allows(Some(9), 5));
        assert!(!Earlier.allows(Some(1), 5));
    }
}
