//! Reply encoding: RESP2, or RESP3 once a connection says `HELLO 3`, into
//! one output buffer per connection.
//!
//! Only nulls, maps and verbatim strings differ between the two here: RESP2
//! writes a null as `$-1`, a map as a flat array of keys and values, and a
//! verbatim string as a bulk string.

/// The connection's output: replies appended in order, written to the
/// socket once per batch of pipelined commands.
#[derive(Debug)]
pub(crate) struct Out {
    /// The encoded replies not written yet.
    pub(crate) buf: Vec<u8>,
    /// Whether the connection speaks RESP3.
    pub(crate) resp3: bool,
}

impl Out {
    /// An empty RESP2 output.
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(16 * 1024),
            resp3: false,
        }
    }

    /// `+text`. `text` must not hold CR or LF.
    pub(crate) fn simple(&mut self, text: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`.
    pub(crate) fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// `-message`: the message starts with its code (`ERR`, `NOAUTH`…). CR
    /// and LF, which would break the framing, become spaces.
    pub(crate) fn error(&mut self, message: &str) {
        self.error_bytes(message.as_bytes());
    }

    /// [`Self::error`] of raw bytes (an echoed argument need not be UTF-8).
    pub(crate) fn error_bytes(&mut self, message: &[u8]) {
        self.buf.push(b'-');
        self.buf.extend(
            message
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `:n`.
    pub(crate) fn integer(&mut self, n: i64) {
        self.buf.push(b':');
        self.decimal(n);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `$len\r\nbytes`.
    pub(crate) fn bulk(&mut self, bytes: &[u8]) {
        self.header(b'$', bytes.len());
        self.buf.extend_from_slice(bytes);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The null bulk string (RESP2 `$-1`, RESP3 `_`).
    pub(crate) fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// A bulk string, or the null if `None`.
    pub(crate) fn bulk_or_null(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            Some(b) => self.bulk(b),
            None => self.null(),
        }
    }

    /// The header of an array of `len` elements, which follow.
    pub(crate) fn array(&mut self, len: usize) {
        self.header(b'*', len);
    }

    /// The header of a map of `len` pairs, which follow as key, value, key,
    /// value… (RESP2: an array of `2 × len`).
    pub(crate) fn map(&mut self, len: usize) {
        if self.resp3 {
            self.header(b'%', len);
        } else {
            self.header(b'*', len * 2);
        }
    }

    /// A verbatim text string (RESP3 `=len\r\ntxt:…`; RESP2: a bulk string).
    pub(crate) fn verbatim(&mut self, text: &str) {
        if self.resp3 {
            self.header(b'=', text.len() + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }

    fn header(&mut self, kind: u8, len: usize) {
        self.buf.push(kind);
        self.decimal(i64::try_from(len).unwrap_or(i64::MAX));
        self.buf.extend_from_slice(b"\r\n");
    }

    fn decimal(&mut self, n: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n.unsigned_abs();
        loop {
            at -= 1;
            // `at` stays in bounds: a u64 has at most 20 digits.
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 || at == 0 {
                break;
            }
        }
        if n < 0 {
            self.buf.push(b'-');
        }
        self.buf
            .extend_from_slice(digits.get(at..).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(resp3: bool, f: impl FnOnce(&mut Out)) -> String {
        let mut out = Out::new();
        out.resp3 = resp3;
        f(&mut out);
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    #[test]
    fn scalars() {
        assert_eq!(encoded(false, |o| o.simple("PONG")), "+PONG\r\n");
        assert_eq!(encoded(false, |o| o.error("ERR a\r\nb")), "-ERR a  b\r\n");
        for n in [0, 7, -7, 1234567890, i64::MIN, i64::MAX] {
            assert_eq!(encoded(false, |o| o.integer(n)), format!(":{n}\r\n"));
        }
        assert_eq!(encoded(false, |o| o.bulk(b"")), "$0\r\n\r\n");
        assert_eq!(encoded(false, |o| o.bulk(b"ab")), "$2\r\nab\r\n");
    }

    #[test]
    fn resp3_differs_in_nulls_maps_and_verbatim_strings() {
        assert_eq!(encoded(false, Out::null), "$-1\r\n");
        assert_eq!(encoded(true, Out::null), "_\r\n");
        assert_eq!(encoded(false, |o| o.map(2)), "*4\r\n");
        assert_eq!(encoded(true, |o| o.map(2)), "%2\r\n");
        assert_eq!(encoded(false, |o| o.verbatim("hi")), "$2\r\nhi\r\n");
        assert_eq!(encoded(true, |o| o.verbatim("hi")), "=6\r\ntxt:hi\r\n");
    }
}
