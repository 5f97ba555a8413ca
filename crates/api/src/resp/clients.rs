//! The connected clients, for `CLIENT LIST` and `CLIENT INFO`.
//!
//! Each connection registers an entry when it opens and removes it when it
//! closes; the connection updates its own entry after each command (an
//! uncontended lock), and `CLIENT LIST` reads them all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// What one connection shows of itself.
#[derive(Debug)]
pub(crate) struct ClientEntry {
    id: u64,
    addr: Option<SocketAddr>,
    connected: Instant,
    state: Mutex<ClientState>,
}

/// The parts of an entry that change.
#[derive(Debug)]
struct ClientState {
    name: Option<Vec<u8>>,
    /// The user it authenticated as (`default` until then, as in Redis).
    user: String,
    last_active: Instant,
    last_command: &'static str,
    resp3: bool,
    /// Commands queued in an open `MULTI`, if one is open.
    multi: Option<usize>,
}

impl ClientEntry {
    fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a command the connection ran.
    pub(crate) fn ran(&self, command: &'static str, resp3: bool, multi: Option<usize>) {
        let mut s = self.state();
        s.last_active = Instant::now();
        s.last_command = command;
        s.resp3 = resp3;
        s.multi = multi;
    }

    /// Records the user the connection authenticated as.
    pub(crate) fn authenticated(&self, user: &str) {
        user.clone_into(&mut self.state().user);
    }

    /// Records the connection's new name.
    pub(crate) fn named(&self, name: Option<Vec<u8>>) {
        self.state().name = name;
    }

    /// The line `CLIENT LIST` and `CLIENT INFO` show, as Redis writes it
    /// (the fields Gyre knows), newline-terminated.
    pub(crate) fn line(&self, now: Instant) -> String {
        let s = self.state();
        format!(
            "id={} addr={} name={} age={} idle={} flags=N db=0 multi={} cmd={} user={} resp={}\n",
            self.id,
            self.addr.map_or_else(|| "?".to_owned(), |a| a.to_string()),
            String::from_utf8_lossy(s.name.as_deref().unwrap_or_default()),
            now.saturating_duration_since(self.connected).as_secs(),
            now.saturating_duration_since(s.last_active).as_secs(),
            s.multi.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            s.last_command,
            s.user,
            if s.resp3 { 3 } else { 2 },
        )
    }
}

/// Every open connection of one server.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    entries: Mutex<BTreeMap<u64, Arc<ClientEntry>>>,
}

impl Clients {
    fn entries(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<ClientEntry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers connection `id` from `addr`.
    pub(crate) fn open(&self, id: u64, addr: Option<SocketAddr>) -> Arc<ClientEntry> {
        let now = Instant::now();
        let entry = Arc::new(ClientEntry {
            id,
            addr,
            connected: now,
            state: Mutex::new(ClientState {
                name: None,
                user: "default".to_owned(),
                last_active: now,
                last_command: "NULL",
                resp3: false,
                multi: None,
            }),
        });
        self.entries().insert(id, Arc::clone(&entry));
        entry
    }

    /// Removes connection `id`.
    pub(crate) fn close(&self, id: u64) {
        self.entries().remove(&id);
    }

    /// `CLIENT LIST [ID id …]`: a line per connection, by id.
    pub(crate) fn list(&self, ids: Option<&[u64]>) -> String {
        let now = Instant::now();
        let entries: Vec<Arc<ClientEntry>> = self
            .entries()
            .values()
            .filter(|e| ids.is_none_or(|ids| ids.contains(&e.id)))
            .cloned()
            .collect();
        entries.iter().map(|e| e.line(now)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_and_go_and_show_what_they_did() {
        let clients = Clients::default();
        let a = clients.open(1, Some("127.0.0.1:5000".parse().unwrap()));
        let _b = clients.open(2, None);
        a.named(Some(b"web".to_vec()));
        a.ran("get", true, None);
        let list = clients.list(None);
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("id=1 addr=127.0.0.1:5000 name=web age=0 idle=0 "));
        assert!(lines[0].contains(" multi=-1 cmd=get ") && lines[0].ends_with("resp=3"));
        assert!(lines[1].starts_with("id=2 addr=? name= "));
        assert_eq!(clients.list(Some(&[2])).lines().count(), 1);
        clients.close(1);
        assert_eq!(clients.list(None).lines().count(), 1);
    }
}
