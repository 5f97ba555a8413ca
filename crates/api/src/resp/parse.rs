//! The request parser: multibulk arrays (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! and inline commands (`GET k\n`), from a buffer that fills as bytes
//! arrive.
//!
//! The parser never copies a multibulk argument: a parsed command is a list
//! of ranges into the caller's buffer, valid until the caller consumes the
//! command's bytes. Inline arguments, which may hold escapes, are unquoted
//! into the parser's own scratch buffer.
//!
//! A command that is not complete yet is remembered (the arguments parsed so
//! far and where the next one starts), so a command of many arguments
//! arriving in many reads is parsed once, not once per read. Every declared
//! length is checked against [`Limits`] before it is trusted, and the parser
//! allocates nothing in proportion to a declared length: its buffers grow
//! only with arguments actually received.

use std::ops::Range;

/// Longest inline command, and longest `*`/`$` header line: Redis's
/// `PROTO_INLINE_MAX_SIZE`.
pub(crate) const MAX_INLINE: usize = 64 * 1024;
/// Arguments a client may send before it authenticates (Redis's limit).
pub(crate) const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// Longest argument a client may send before it authenticates (Redis's limit).
pub(crate) const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;

/// What the parser accepts of the next command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Most arguments in one command (the command name included).
    pub(crate) max_args: usize,
    /// Longest argument, in bytes.
    pub(crate) max_bulk: usize,
    /// Whether these are the limits before authentication (they have their
    /// own error messages).
    pub(crate) unauthenticated: bool,
}

/// The input is not RESP: the connection's framing is lost. The message
/// follows `Protocol error: ` in the reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub(crate) struct ProtocolError(pub(crate) String);

/// Where an incomplete command stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a command.
    Idle,
    /// Inside a multibulk command: `remaining` arguments to go, the next one
    /// at `pos`.
    Multibulk { remaining: usize, pos: usize },
}

/// A resumable parser of one connection's requests.
#[derive(Debug)]
pub(crate) struct Parser {
    state: State,
    /// The arguments of the command being parsed (or just parsed).
    ranges: Vec<Range<usize>>,
    /// Whether `ranges` index `scratch` (inline) rather than the input.
    inline: bool,
    /// Unquoted inline arguments.
    scratch: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

/// The arguments of one parsed command, the command name first. Never
/// empty.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Args<'a> {
    data: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    /// The arguments `ranges` of `data` name, the command name first.
    pub(crate) fn new(data: &'a [u8], ranges: &'a [Range<usize>]) -> Self {
        Self { data, ranges }
    }

    /// How many arguments, the name included.
    pub(crate) fn len(&self) -> usize {
        self.ranges.len()
    }

    /// The `i`th argument (0: the command name), or empty past the end.
    pub(crate) fn get(&self, i: usize) -> &'a [u8] {
        self.ranges
            .get(i)
            .and_then(|r| self.data.get(r.clone()))
            .unwrap_or_default()
    }

    /// Every argument, the name first.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let data = self.data;
        self.ranges
            .iter()
            .map(move |r| data.get(r.clone()).unwrap_or_default())
    }
}

impl Parser {
    /// A parser at the start of a stream.
    pub(crate) fn new() -> Self {
        Self {
            state: State::Idle,
            ranges: Vec::new(),
            inline: false,
            scratch: Vec::new(),
        }
    }

    /// Parses the next command at the start of `buf`, which holds every
    /// byte received and not yet consumed (the same bytes as at the last
    /// call, and maybe more).
    ///
    /// `Ok(Some(n))`: a command is complete in `buf[..n]`; read it with
    /// [`Self::args`], then drop those `n` bytes from the buffer before the
    /// next call. `n` may cover empty commands (blank lines, `*0`) that
    /// preceded it. `Ok(None)`: more bytes are needed; nothing is to be
    /// consumed. `Err`: the input is not RESP.
    pub(crate) fn parse(
        &mut self,
        buf: &[u8],
        limits: Limits,
    ) -> Result<Option<usize>, ProtocolError> {
        let mut start = 0;
        loop {
            if self.state == State::Idle {
                let Some(&first) = buf.get(start) else {
                    return Ok(None);
                };
                if self.ranges.capacity() > 64 * 1024 {
                    // Give back what a command of many arguments took.
                    self.ranges = Vec::new();
                }
                self.ranges.clear();
                self.inline = false;
                if first == b'*' {
                    let Some((count, next)) = line(buf, start + 1, "mbulk")? else {
                        return Ok(None);
                    };
                    let count = integer(count)
                        .ok_or_else(|| ProtocolError("invalid multibulk length".into()))?;
                    if count <= 0 {
                        // Redis ignores empty and null arrays.
                        start = next;
                        continue;
                    }
                    if count as u64 > limits.max_args as u64 {
                        return Err(ProtocolError(if limits.unauthenticated {
                            "unauthenticated multibulk length".into()
                        } else {
                            "invalid multibulk length".into()
                        }));
                    }
                    self.state = State::Multibulk {
                        // Checked above: 0 < count ≤ max_args.
                        remaining: count as usize,
                        pos: next,
                    };
                } else {
                    match self.parse_inline(buf, start, limits)? {
                        None => return Ok(None),
                        Some(end) if self.ranges.is_empty() => start = end,
                        Some(end) => return Ok(Some(end)),
                    }
                    continue;
                }
            }
            return self.multibulk(buf, limits);
        }
    }

    /// The arguments of the command [`Self::parse`] just returned, given the
    /// same buffer.
    pub(crate) fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        Args {
            data: if self.inline { &self.scratch } else { buf },
            ranges: &self.ranges,
        }
    }

    /// Continues a multibulk command.
    fn multibulk(&mut self, buf: &[u8], limits: Limits) -> Result<Option<usize>, ProtocolError> {
        let State::Multibulk {
            mut remaining,
            mut pos,
        } = self.state
        else {
            return Ok(None);
        };
        while remaining > 0 {
            let Some(&first) = buf.get(pos) else {
                break;
            };
            if first != b'$' {
                return Err(ProtocolError(format!(
                    "expected '$', got '{}'",
                    printable(first)
                )));
            }
            let Some((len, data)) = line(buf, pos + 1, "bulk")? else {
                break;
            };
            let len = integer(len)
                .filter(|&n| n >= 0)
                .ok_or_else(|| ProtocolError("invalid bulk length".into()))?;
            if len as u64 > limits.max_bulk as u64 {
                return Err(ProtocolError(if limits.unauthenticated {
                    "unauthenticated bulk length".into()
                } else {
                    "invalid bulk length".into()
                }));
            }
            // len ≤ max_bulk, a usize. Saturated ends lie past any buffer:
            // such a length waits for bytes the query limit stops first.
            let end = data.saturating_add(len as usize);
            match buf.get(end..end.saturating_add(2)) {
                None => break,
                Some(b"\r\n") => {}
                Some(_) => return Err(ProtocolError("expected CRLF after bulk string".into())),
            }
            self.ranges.push(data..end);
            // In bounds: buf holds end + 2 bytes.
            pos = end + 2;
            remaining -= 1;
        }
        if remaining > 0 {
            self.state = State::Multibulk { remaining, pos };
            return Ok(None);
        }
        self.state = State::Idle;
        Ok(Some(pos))
    }

    /// Parses an inline command starting at `start`: its end, or `None` if
    /// the line is not complete. No arguments: a blank line.
    fn parse_inline(
        &mut self,
        buf: &[u8],
        start: usize,
        limits: Limits,
    ) -> Result<Option<usize>, ProtocolError> {
        let rest = buf.get(start..).unwrap_or_default();
        let window = rest.get(..MAX_INLINE + 1).unwrap_or(rest);
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_INLINE {
                return Err(ProtocolError("too big inline request".into()));
            }
            return Ok(None);
        };
        let mut text = window.get(..nl).unwrap_or_default();
        if let Some(stripped) = text.strip_suffix(b"\r") {
            text = stripped;
        }
        self.scratch.clear();
        self.ranges.clear();
        split_args(text, &mut self.scratch, &mut self.ranges)
            .map_err(|()| ProtocolError("unbalanced quotes in request".into()))?;
        if self.ranges.len() > limits.max_args {
            return Err(ProtocolError("invalid multibulk length".into()));
        }
        self.inline = true;
        Ok(Some(start + nl + 1))
    }
}

/// The header line that starts at `from` (after its `*` or `$`; `kind`
/// names it in errors, `mbulk` or `bulk`): its text and where the byte after
/// its CRLF is. `None`: not complete yet.
fn line<'a>(
    buf: &'a [u8],
    from: usize,
    kind: &str,
) -> Result<Option<(&'a [u8], usize)>, ProtocolError> {
    let rest = buf.get(from..).unwrap_or_default();
    let window = rest.get(..MAX_INLINE + 2).unwrap_or(rest);
    match window.iter().position(|&b| b == b'\r') {
        Some(cr) => match window.get(cr + 1) {
            Some(b'\n') => Ok(Some((window.get(..cr).unwrap_or_default(), from + cr + 2))),
            Some(_) => Err(ProtocolError(format!(
                "{kind} count not terminated by CRLF"
            ))),
            None => Ok(None),
        },
        None if rest.len() > MAX_INLINE => {
            Err(ProtocolError(format!("too big {kind} count string")))
        }
        None => Ok(None),
    }
}

/// A decimal integer as Redis's `string2ll` accepts it: an optional `-`,
/// digits, no leading zeros (but `0`), no sign on zero, at most 19 digits.
pub(crate) fn integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    if digits.len() > 19 {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        value = if negative {
            value.checked_mul(10)?.checked_sub(d)?
        } else {
            value.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(value)
}

/// Splits an inline command into arguments as Redis's `sdssplitargs` does:
/// blanks separate arguments; `"…"` allows the escapes `\n \r \t \b \a \\
/// \" \xHH`; `'…'` allows only `\'`; a closing quote must be followed by a
/// blank or the end. Arguments go to `out`, their ranges to `ranges`.
fn split_args(line: &[u8], out: &mut Vec<u8>, ranges: &mut Vec<Range<usize>>) -> Result<(), ()> {
    let mut i = 0;
    let at = |i: usize| line.get(i).copied();
    loop {
        while at(i).is_some_and(is_blank) {
            i += 1;
        }
        let Some(_) = at(i) else {
            return Ok(());
        };
        let begin = out.len();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let Some(c) = at(i) else {
                if in_double || in_single {
                    return Err(());
                }
                break;
            };
            if in_double {
                match c {
                    b'\\'
                        if at(i + 1) == Some(b'x')
                            && at(i + 2).is_some_and(|h| h.is_ascii_hexdigit())
                            && at(i + 3).is_some_and(|h| h.is_ascii_hexdigit()) =>
                    {
                        let hex = |h: u8| (h as char).to_digit(16).unwrap_or(0) as u8;
                        out.push(hex(at(i + 2).unwrap_or(0)) * 16 + hex(at(i + 3).unwrap_or(0)));
                        i += 3;
                    }
                    b'\\' if at(i + 1).is_some() => {
                        i += 1;
                        out.push(match at(i).unwrap_or(0) {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    b'"' => {
                        if at(i + 1).is_some_and(|n| !is_blank(n)) {
                            return Err(());
                        }
                        i += 1;
                        break;
                    }
                    _ => out.push(c),
                }
            } else if in_single {
                match c {
                    b'\\' if at(i + 1) == Some(b'\'') => {
                        i += 1;
                        out.push(b'\'');
                    }
                    b'\'' => {
                        if at(i + 1).is_some_and(|n| !is_blank(n)) {
                            return Err(());
                        }
                        i += 1;
                        break;
                    }
                    _ => out.push(c),
                }
            } else {
                match c {
                    c if is_blank(c) => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => out.push(c),
                }
            }
            i += 1;
        }
        ranges.push(begin..out.len());
    }
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

/// A byte as Redis shows it in "expected '$', got 'X'".
fn printable(b: u8) -> char {
    if b.is_ascii_graphic() || b == b' ' {
        b as char
    } else {
        '?'
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const LIMITS: Limits = Limits {
        max_args: 1024,
        max_bulk: 1 << 20,
        unauthenticated: false,
    };

    /// Every command in `input`, parsed whole, or the error.
    fn parse_all(input: &[u8], limits: Limits) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut parser = Parser::new();
        let mut buf = input.to_vec();
        let mut commands = Vec::new();
        while let Some(n) = parser.parse(&buf, limits)? {
            commands.push(parser.args(&buf).iter().map(<[u8]>::to_vec).collect());
            buf.drain(..n);
        }
        Ok(commands)
    }

    /// Every command in `input` fed in the pieces that `cuts` make.
    fn parse_split(
        input: &[u8],
        cuts: &[usize],
        limits: Limits,
    ) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut parser = Parser::new();
        let mut buf = Vec::new();
        let mut commands = Vec::new();
        let mut fed = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        for cut in cuts {
            buf.extend_from_slice(&input[fed..cut.max(fed)]);
            fed = cut.max(fed);
            while let Some(n) = parser.parse(&buf, limits)? {
                commands.push(parser.args(&buf).iter().map(<[u8]>::to_vec).collect());
                buf.drain(..n);
            }
        }
        Ok(commands)
    }

    fn words(command: &[&str]) -> Vec<Vec<u8>> {
        command.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    fn encode(command: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", command.len()).into_bytes();
        for arg in command {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn multibulk_and_inline_commands_parse_alike() {
        let input =
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nSET k hello\r\n\r\n*0\r\nGET k\n";
        assert_eq!(
            parse_all(input, LIMITS).unwrap(),
            [
                words(&["SET", "k", "hello"]),
                words(&["SET", "k", "hello"]),
                words(&["GET", "k"])
            ]
        );
    }

    #[test]
    fn inline_quotes_and_escapes_unquote() {
        let input = b"SET \"a b\\x41\\n\" 'it\\'s'  \"\"\r\n";
        assert_eq!(
            parse_all(input, LIMITS).unwrap(),
            [vec![
                b"SET".to_vec(),
                b"a bA\n".to_vec(),
                b"it's".to_vec(),
                Vec::new()
            ]]
        );
        for bad in [&b"SET \"a\r\n"[..], b"SET 'a\n", b"SET \"a\"b\n"] {
            assert_eq!(
                parse_all(bad, LIMITS),
                Err(ProtocolError("unbalanced quotes in request".into()))
            );
        }
    }

    #[test]
    fn malformed_framing_is_a_protocol_error() {
        let cases: [(&[u8], &str); 9] = [
            (b"*x\r\n", "invalid multibulk length"),
            (b"*2000\r\n", "invalid multibulk length"),
            (b"*1\r\n:1\r\n", "expected '$', got ':'"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$01\r\n", "invalid bulk length"),
            (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
            (b"*1\r\n$2000000\r\n", "invalid bulk length"),
            (b"*1\r\n$1\r\nab\r\n", "expected CRLF after bulk string"),
            (b"*1\r\n$1\rx", "bulk count not terminated by CRLF"),
        ];
        for (input, message) in cases {
            assert_eq!(
                parse_all(input, LIMITS),
                Err(ProtocolError(message.into())),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn unterminated_headers_and_inline_lines_are_bounded() {
        let long = vec![b'a'; MAX_INLINE + 1];
        assert_eq!(
            parse_all(&long, LIMITS),
            Err(ProtocolError("too big inline request".into()))
        );
        let mut header = b"*".to_vec();
        header.extend_from_slice(&[b'1'; MAX_INLINE + 1]);
        assert_eq!(
            parse_all(&header, LIMITS),
            Err(ProtocolError("too big mbulk count string".into()))
        );
        // Just under the limit: still waiting for more.
        assert_eq!(
            parse_all(&long[..MAX_INLINE], LIMITS).unwrap(),
            Vec::<Vec<Vec<u8>>>::new()
        );
    }

    #[test]
    fn unauthenticated_limits_have_their_own_messages() {
        let limits = Limits {
            max_args: UNAUTHENTICATED_MAX_ARGS,
            max_bulk: UNAUTHENTICATED_MAX_BULK,
            unauthenticated: true,
        };
        assert_eq!(
            parse_all(b"*11\r\n", limits),
            Err(ProtocolError("unauthenticated multibulk length".into()))
        );
        assert_eq!(
            parse_all(b"*1\r\n$16385\r\n", limits),
            Err(ProtocolError("unauthenticated bulk length".into()))
        );
    }

    #[test]
    fn a_declared_length_allocates_nothing_before_its_bytes_arrive() {
        let mut parser = Parser::new();
        let limits = Limits {
            max_args: 1 << 20,
            max_bulk: 1 << 30,
            unauthenticated: false,
        };
        assert_eq!(
            parser.parse(b"*1048576\r\n$1073741824\r\nab", limits),
            Ok(None)
        );
        assert!(parser.ranges.capacity() < 1024);
    }

    #[test]
    fn integers_parse_as_redis_does() {
        assert_eq!(integer(b"0"), Some(0));
        assert_eq!(integer(b"-12"), Some(-12));
        assert_eq!(integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(integer(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
        ] {
            assert_eq!(integer(bad), None, "{bad:?}");
        }
    }

    fn arg() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            "[a-zA-Z0-9:_]{1,12}".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            input in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let whole = parse_all(&input, LIMITS);
            let split = parse_split(&input, &cuts, LIMITS);
            // Fed whole or in pieces, the same commands (or the same error)
            // come out.
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn framed_input_with_a_corrupt_byte_never_panics(
            commands in proptest::collection::vec(proptest::collection::vec(arg(), 1..5), 1..5),
            at in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let mut input: Vec<u8> = commands.iter().flat_map(|c| encode(c)).collect();
            let at = at % input.len();
            input[at] = byte;
            let _ = parse_all(&input, LIMITS);
        }

        #[test]
        fn a_split_command_parses_as_the_whole(
            commands in proptest::collection::vec(proptest::collection::vec(arg(), 1..6), 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let input: Vec<u8> = commands.iter().flat_map(|c| encode(c)).collect();
            prop_assert_eq!(parse_all(&input, LIMITS).unwrap(), commands.clone());
            prop_assert_eq!(parse_split(&input, &cuts, LIMITS).unwrap(), commands);
        }

        #[test]
        fn a_split_inline_command_parses_as_the_whole(
            words in proptest::collection::vec("[a-zA-Z0-9:_]{1,8}", 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let input = format!("{}\r\n", words.join(" ")).into_bytes();
            let expected: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
            prop_assert_eq!(parse_split(&input, &cuts, LIMITS).unwrap(), vec![expected]);
        }
    }
}
