//! The keyspace commands: `SCAN`, `KEYS`, `DBSIZE`.
//!
//! A `SCAN` cursor is a position on the ring (a key hash): keys are walked
//! in hash order, partition by partition, each page from a read quorum of
//! the partition's replicas (see [`crate::Backend::list_keys`]), so every
//! key that has a value for the whole scan is returned at least once, even
//! while partitions move between nodes. `MATCH` filters the page on this
//! node, so a page may hold fewer keys than `COUNT`, or none, with the
//! cursor not yet 0: keep scanning until it is, as with Redis. `KEYS` is the
//! whole walk in one command: it reads every key of the bucket, so it is as
//! expensive as it is in Redis. `DBSIZE` is an estimate: per partition, the
//! most objects any replica holds, every bucket, tombstones and expired
//! values not yet purged included.

use super::command::{Fail, Server, Session, err, syntax_error};
use super::parse::{self, Args};
use super::pattern::Pattern;
use super::reply::Out;
use crate::Backend;

/// `SCAN`'s page size when `COUNT` is not given (Redis's).
const DEFAULT_COUNT: usize = 10;
/// The largest `COUNT` honoured (larger asks get this many).
const MAX_COUNT: usize = 10_000;
/// Keys per page of the walk `KEYS` makes.
const KEYS_PAGE: usize = 1_000;

/// `SCAN`'s options.
struct ScanOptions {
    pattern: Option<Pattern>,
    count: usize,
    /// `TYPE` named a type other than `string`: nothing can match.
    no_type: bool,
}

fn scan_options(args: Args<'_>) -> Result<ScanOptions, Fail> {
    let mut options = ScanOptions {
        pattern: None,
        count: DEFAULT_COUNT,
        no_type: false,
    };
    let mut i = 2;
    while i < args.len() {
        let (option, value) = (args.get(i), args.get(i + 1));
        if i + 1 >= args.len() {
            return Err(syntax_error());
        }
        if option.eq_ignore_ascii_case(b"MATCH") {
            let pattern = Pattern::new(value, false);
            options.pattern = (!pattern.is_everything()).then_some(pattern);
        } else if option.eq_ignore_ascii_case(b"COUNT") {
            match parse::integer(value) {
                Some(n) if n >= 1 => {
                    options.count = usize::try_from(n).unwrap_or(MAX_COUNT).min(MAX_COUNT);
                }
                Some(_) => return Err(syntax_error()),
                None => return Err(super::command::not_integer()),
            }
        } else if option.eq_ignore_ascii_case(b"TYPE") {
            options.no_type = !value.eq_ignore_ascii_case(b"string");
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    Ok(options)
}

impl<B: Backend> Server<B> {
    /// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]`.
    pub(crate) async fn scan(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let cursor = std::str::from_utf8(args.get(1))
            .ok()
            .and_then(|c| c.parse::<u64>().ok())
            .ok_or_else(|| err("ERR invalid cursor"))?;
        let options = scan_options(args)?;
        if options.no_type {
            // Every key is a string: a walk would find nothing.
            out.array(2);
            out.bulk(b"0");
            out.array(0);
            return Ok(());
        }
        let page = self
            .backend
            .list_keys(&session.bucket, cursor, options.count)
            .await?;
        let keys: Vec<_> = page
            .keys
            .iter()
            .filter(|k| {
                options
                    .pattern
                    .as_ref()
                    .is_none_or(|p| p.matches(k.as_bytes()))
            })
            .collect();
        out.array(2);
        out.bulk(page.cursor.to_string().as_bytes());
        out.array(keys.len());
        for key in keys {
            out.bulk(key.as_bytes());
        }
        Ok(())
    }

    /// `KEYS pattern`: the whole walk.
    pub(crate) async fn keys(
        &self,
        session: &Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let pattern = Pattern::new(args.get(1), false);
        let mut found = Vec::new();
        let mut cursor = 0;
        loop {
            let page = self
                .backend
                .list_keys(&session.bucket, cursor, KEYS_PAGE)
                .await?;
            found.extend(
                page.keys
                    .into_iter()
                    .filter(|k| pattern.matches(k.as_bytes())),
            );
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
        out.array(found.len());
        for key in &found {
            out.bulk(key.as_bytes());
        }
        Ok(())
    }

    /// `DBSIZE`: an estimate (see the module documentation).
    pub(crate) async fn dbsize(&self, out: &mut Out) -> Result<(), Fail> {
        let n = self.backend.key_count().await?;
        out.integer(i64::try_from(n).unwrap_or(i64::MAX));
        Ok(())
    }
}
