//! Redis glob patterns (`KEYS`, `SCAN … MATCH`, `CONFIG GET`): `*` any run
//! of bytes, `?` one byte, `[abc]`, `[a-z]` and `[^…]` one byte of (or not
//! of) a set, `\x` the byte `x`. A `[` without its `]` takes the rest of the
//! pattern as its set, as Redis's `stringmatchlen` does.
//!
//! Matching is linear in the text for each star (the classic algorithm that
//! backtracks only to the last `*`), so a hostile pattern cannot make it
//! exponential.

/// One element of a parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// `*`.
    Star,
    /// `?`.
    Any,
    /// A set of bytes, possibly negated.
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
    /// One byte.
    Byte(u8),
}

/// A parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
    nocase: bool,
}

impl Pattern {
    /// Parses `pattern`; `nocase` compares ASCII letters in any case.
    pub(crate) fn new(pattern: &[u8], nocase: bool) -> Self {
        let mut tokens = Vec::new();
        let mut i = 0;
        while let Some(&b) = pattern.get(i) {
            i += 1;
            let token = match b {
                b'*' => {
                    if tokens.last() == Some(&Token::Star) {
                        continue;
                    }
                    Token::Star
                }
                b'?' => Token::Any,
                b'\\' => match pattern.get(i) {
                    Some(&next) => {
                        i += 1;
                        Token::Byte(next)
                    }
                    None => Token::Byte(b'\\'),
                },
                b'[' => {
                    let negated = pattern.get(i) == Some(&b'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    while let Some(&c) = pattern.get(i) {
                        i += 1;
                        match c {
                            b']' => break,
                            b'\\' if i < pattern.len() => {
                                let lit = pattern[i];
                                i += 1;
                                ranges.push((lit, lit));
                            }
                            _ if pattern.get(i) == Some(&b'-')
                                && pattern.get(i + 1).is_some_and(|&e| e != b']') =>
                            {
                                let end = pattern[i + 1];
                                i += 2;
                                ranges.push((c.min(end), c.max(end)));
                            }
                            _ => ranges.push((c, c)),
                        }
                    }
                    Token::Class { negated, ranges }
                }
                other => Token::Byte(other),
            };
            tokens.push(token);
        }
        Self { tokens, nocase }
    }

    /// Whether the pattern is `*` (matches everything).
    pub(crate) fn is_everything(&self) -> bool {
        self.tokens == [Token::Star]
    }

    fn one(&self, token: &Token, b: u8) -> bool {
        let same = |x: u8, y: u8| {
            if self.nocase {
                x.eq_ignore_ascii_case(&y)
            } else {
                x == y
            }
        };
        match token {
            Token::Star | Token::Any => true,
            Token::Byte(x) => same(*x, b),
            Token::Class { negated, ranges } => {
                let inside = ranges.iter().any(|&(lo, hi)| {
                    (lo..=hi).contains(&b)
                        || (self.nocase
                            && ((lo..=hi).contains(&b.to_ascii_lowercase())
                                || (lo..=hi).contains(&b.to_ascii_uppercase())))
                });
                inside != *negated
            }
        }
    }

    /// Whether `text` matches.
    pub(crate) fn matches(&self, text: &[u8]) -> bool {
        let (mut p, mut t) = (0, 0);
        // Where the last star was, and the text position it resumes at.
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(token) if self.one(token, text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|tok| *tok == Token::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern.as_bytes(), false).matches(text.as_bytes())
    }

    #[test]
    fn globs_match_as_redis_does() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("session:*", "session:42"));
        assert!(!m("session:*", "user:42"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("[\\]]", "]"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        // Case matters, except where asked not to.
        assert!(!m("KEY", "key"));
        assert!(Pattern::new(b"APP*", true).matches(b"appendonly"));
        // An unterminated class takes the rest.
        assert!(m("[ab", "a"));
    }

    /// A backtracking matcher takes exponential time here and would never
    /// finish; this one makes at most (stars + 1) passes over the text.
    #[test]
    fn a_hostile_pattern_finishes() {
        let pattern = "*a".repeat(50) + "b";
        let text = "a".repeat(10_000);
        assert!(!m(&pattern, &text));
        assert!(m(&("*a".repeat(50) + "*"), &text));
    }
}
