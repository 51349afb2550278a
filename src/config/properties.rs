//! The Java `.properties` syntax that RocketMQ broker files use.
//!
//! Follows `java.util.Properties.load` with two deliberate differences:
//! - trailing unescaped whitespace after a value is dropped (Java keeps it, and
//!   `listenPort=30911 ` then fails in RocketMQ with a confusing number error);
//! - an empty key (a line starting with `=`) is an error instead of a silent entry.
//!
//! Rules kept from Java: a line whose first non-blank character is `#` or `!` is a
//! comment; the key ends at the first unescaped `=`, `:` or blank; blanks around the
//! separator are skipped; a line ending in an odd number of `\` continues on the next
//! line (whose leading blanks are skipped); escapes `\t \n \r \f \uXXXX`, and `\x` is `x`
//! for any other `x`.

/// One `key=value` entry, unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    /// 1-based line where the entry starts.
    pub line: u32,
}

/// A line that is not valid properties syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub reason: String,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{c}'
}

/// Parses `text` into entries in file order. Duplicate keys are returned as they are
/// (the caller decides; the config layer refuses them).
pub fn parse_properties(text: &str) -> Result<Vec<Property>, SyntaxError> {
    let mut out = Vec::new();
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((idx, raw)) = lines.next() {
        let start_line = line_number(idx);
        let first = raw
            .strip_suffix('\r')
            .unwrap_or(raw)
            .trim_start_matches(is_blank);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::new();
        let mut piece = first;
        loop {
            if ends_with_odd_backslashes(piece) {
                logical.push_str(&piece[..piece.len() - 1]);
                match lines.next() {
                    Some((_, next)) => {
                        piece = next
                            .strip_suffix('\r')
                            .unwrap_or(next)
                            .trim_start_matches(is_blank);
                    }
                    None => break,
                }
            } else {
                logical.push_str(piece);
                break;
            }
        }
        let (key, value) = split_entry(&logical).map_err(|reason| SyntaxError {
            line: start_line,
            reason,
        })?;
        if key.is_empty() {
            return Err(SyntaxError {
                line: start_line,
                reason: "entry has an empty key".to_string(),
            });
        }
        out.push(Property {
            key,
            value,
            line: start_line,
        });
    }
    Ok(out)
}

fn line_number(idx: usize) -> u32 {
    u32::try_from(idx).map_or(u32::MAX, |i| i.saturating_add(1))
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line into its unescaped key and value.
fn split_entry(logical: &str) -> Result<(String, String), String> {
    let chars: Vec<char> = logical.chars().collect();
    let mut i = 0;
    // Key: up to the first unescaped separator or blank.
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        if c == '=' || c == ':' || is_blank(c) {
            break;
        }
        i += 1;
    }
    let key_end = i.min(chars.len());
    // Separator: blanks, at most one '=' or ':', blanks.
    while i < chars.len() && is_blank(chars[i]) {
        i += 1;
    }
    if i < chars.len() && (chars[i] == '=' || chars[i] == ':') {
        i += 1;
    }
    while i < chars.len() && is_blank(chars[i]) {
        i += 1;
    }
    let key = unescape(&chars[..key_end])?;
    let value = unescape(&chars[i.min(chars.len())..])?;
    Ok((key.into_iter().map(|(c, _)| c).collect(), trim_value(value)))
}

/// Drops trailing whitespace that was not escaped.
fn trim_value(mut value: Vec<(char, bool)>) -> String {
    while let Some(&(c, escaped)) = value.last() {
        if !escaped && c.is_whitespace() {
            value.pop();
        } else {
            break;
        }
    }
    value.into_iter().map(|(c, _)| c).collect()
}

/// Resolves escapes; each char comes with whether it was escaped.
fn unescape(chars: &[char]) -> Result<Vec<(char, bool)>, String> {
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' {
            out.push((c, false));
            i += 1;
            continue;
        }
        let Some(&next) = chars.get(i + 1) else {
            // A lone trailing backslash (continuation at end of file): nothing follows.
            break;
        };
        i += 2;
        let resolved = match next {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\u{c}',
            'u' => {
                let hex: String = chars.iter().skip(i).take(4).collect();
                let code = (hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| format!("malformed \\u escape: '\\u{hex}'"))?;
                i += 4;
                char::from_u32(code)
                    .ok_or_else(|| format!("\\u{hex} is not a character (surrogate)"))?
            }
            other => other,
        };
        out.push((resolved, true));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, u32)> {
        parse_properties(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value, p.line))
            .collect()
    }

    fn e(k: &str, v: &str, l: u32) -> (String, String, u32) {
        (k.to_string(), v.to_string(), l)
    }

    #[test]
    fn separators_and_spacing() {
        let text = "a=1\nb = 2\n  c:3\nd 4\ne\t=\t5  \nf=\ng\n";
        assert_eq!(
            kv(text),
            vec![
                e("a", "1", 1),
                e("b", "2", 2),
                e("c", "3", 3),
                e("d", "4", 4),
                e("e", "5", 5),
                e("f", "", 6),
                e("g", "", 7)
            ]
        );
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let text = "# one\r\n! two\r\n\r\n   # indented\r\nk=v\r\n## must be unique\r\n";
        assert_eq!(kv(text), vec![e("k", "v", 5)]);
    }

    #[test]
    fn continuation_joins_lines_and_keeps_start_line() {
        let text = "x=1\npeers=n0-a:1;\\\n    n1-b:2\ny=2\n";
        assert_eq!(
            kv(text),
            vec![
                e("x", "1", 1),
                e("peers", "n0-a:1;n1-b:2", 2),
                e("y", "2", 4)
            ]
        );
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(kv("p=a\\\\\nq=b"), vec![e("p", "a\\", 1), e("q", "b", 2)]);
        // A comment line never continues.
        assert_eq!(kv("# c \\\nk=v"), vec![e("k", "v", 2)]);
    }

    #[test]
    fn escapes() {
        assert_eq!(kv(r"a\=b=c\u0041\t"), vec![e("a=b", "cA\t", 1)]);
        assert_eq!(kv("k=v\\ "), vec![e("k", "v ", 1)]);
        let err = parse_properties("ok=1\nk=\\u12").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("\\u"), "{}", err.reason);
        assert!(parse_properties("k=\\uD800").is_err());
    }

    /// Writes `s` so that the parser reads it back unchanged: backslash, separators and
    /// blanks escaped in keys; leading blanks, trailing whitespace, `#`/`!` and control
    /// characters escaped in values.
    fn escape(s: &str, is_key: bool) -> String {
        let mut out = String::new();
        let last = s.chars().count().saturating_sub(1);
        for (i, c) in s.chars().enumerate() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{c}' => out.push_str("\\f"),
                '=' | ':' if is_key || i == 0 => out.push('\\'),
                ' ' if is_key || i == 0 || i == last => out.push('\\'),
                '#' | '!' if i == 0 => out.push('\\'),
                c if c.is_whitespace() && i == last => {
                    out.push_str(&format!("\\u{:04X}", c as u32));
                    continue;
                }
                _ => {}
            }
            if !matches!(c, '\\' | '\n' | '\r' | '\t' | '\u{c}') {
                out.push(c);
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn rendered_entries_parse_back(
            entries in proptest::collection::vec(("[ -~]{1,12}", "[ -~\t\u{e9}\u{4e2d}]{0,20}"), 0..8),
            sep in proptest::sample::select(vec!["=", " = ", ":", " ", "\t=\t"]),
            crlf in proptest::bool::ANY,
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::from("# generated");
            text.push_str(eol);
            for (k, v) in &entries {
                text.push_str(&escape(k, true));
                text.push_str(sep);
                text.push_str(&escape(v, false));
                text.push_str(eol);
            }
            let parsed = parse_properties(&text).unwrap();
            proptest::prop_assert_eq!(parsed.len(), entries.len());
            for (i, (p, (k, v))) in parsed.iter().zip(&entries).enumerate() {
                proptest::prop_assert_eq!(&p.key, k);
                proptest::prop_assert_eq!(&p.value, v);
                proptest::prop_assert_eq!(p.line, i as u32 + 2);
            }
        }
    }

    #[test]
    fn empty_key_is_an_error() {
        let err = parse_properties("a=1\n=2\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
