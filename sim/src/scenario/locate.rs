//! Where a key is in a scenario's text, and what key is at a place in it, so
//! every error names a line of the user's own file; and a TOML error retold
//! with a short excerpt of its line (a 10 MB one-line file must not be echoed).

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Longest excerpt of a source line shown in an error, in characters.
pub(crate) const MAX_EXCERPT: usize = 80;

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

/// The line holding `offset`, cut to [`MAX_EXCERPT`] characters around it,
/// with `...` where it was cut, and the caret's column in the excerpt.
pub(crate) fn excerpt(text: &str, offset: usize) -> (String, usize) {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line: Vec<char> = text[start..end].trim_end_matches('\r').chars().collect();
    let at = text[start..offset].chars().count().min(line.len());
    let from = at.saturating_sub(MAX_EXCERPT / 2);
    let to = (from + MAX_EXCERPT).min(line.len());
    let from = to.saturating_sub(MAX_EXCERPT).min(from);
    let mut out = String::new();
    if from > 0 {
        out.push_str("...");
    }
    out.extend(&line[from..to]);
    if to < line.len() {
        out.push_str("...");
    }
    let caret = at - from + if from > 0 { 3 } else { 0 };
    (out, caret)
}

/// A TOML error retold: `line L, column C: MESSAGE` and the excerpt with a caret.
pub(crate) fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            let (ex, caret) = excerpt(text, span.start);
            format!(
                "line {line}, column {col}: {message}\n    | {ex}\n    | {}^",
                " ".repeat(caret)
            )
        }
        None => message.to_owned(),
    }
}

/// The steps of a dotted key: `group[2].count` and the sweep's
/// `group.2.count` are both [("group", Some(2)), ("count", None)].
fn steps(key: &str) -> Vec<(&str, Option<usize>)> {
    let mut out: Vec<(&str, Option<usize>)> = Vec::new();
    for part in key.split('.') {
        if let (Ok(i), Some(last)) = (part.parse::<usize>(), out.last_mut()) {
            if last.1.is_none() {
                last.1 = Some(i);
                continue;
            }
        }
        out.push(match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
            None => (part, None),
        });
    }
    out
}

/// The line of dotted `key` (`group[2].count`, `network.link[0].from`) in
/// `text`, or of the nearest enclosing table or key that is written there
/// (a key left to its default has no line of its own). `None` when the text
/// does not parse or holds none of it.
pub(crate) fn line_of(text: &str, key: &str) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut found: Option<Range<usize>> = None;
    for (name, index) in steps(key) {
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            break;
        };
        found = Some(k.span());
        let mut value: &Spanned<DeValue<'_>> = v;
        if let DeValue::Array(items) = value.get_ref() {
            match index.and_then(|i| items.get(i)).or(items.first()) {
                Some(item) => {
                    found = Some(item.span());
                    value = item;
                }
                None => break,
            }
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    found.map(|span| line_col(text, span.start).0)
}

/// The dotted key (`group[1].upload`) whose key or value covers byte `offset`.
/// (A table's span covers only its header, so the whole tree is searched.)
pub(crate) fn key_at(text: &str, offset: usize) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    find_in(root.get_ref(), offset, "")
}

fn covers(r: &Range<usize>, offset: usize) -> bool {
    r.start <= offset && offset < r.end.max(r.start + 1)
}

fn find_in(table: &DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (k, v) in table.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        if covers(&k.span(), offset) {
            return Some(path);
        }
        match v.get_ref() {
            DeValue::Table(t) => {
                if let Some(p) = find_in(t, offset, &path) {
                    return Some(p);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        if let Some(p) = find_in(t, offset, &format!("{path}[{i}]")) {
                            return Some(p);
                        }
                    }
                }
                if covers(&v.span(), offset) {
                    return Some(path);
                }
            }
            _ if covers(&v.span(), offset) => return Some(path),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"t\"\n[image]\nsize = \"1 MiB\"\n\n[[group]]\nname = \"a\"\ncount = 1\n\n[[group]]\nname = \"b\"\ncount = 0\n";

    #[test]
    fn keys_are_found_by_line_and_lines_by_key() {
        assert_eq!(line_of(TEXT, "image.size"), Some(3));
        assert_eq!(line_of(TEXT, "group[1].count"), Some(11));
        assert_eq!(line_of(TEXT, "group[0].count"), Some(7));
        assert_eq!(line_of(TEXT, "group.1.count"), Some(11));
        // Left to its default: the enclosing table's line.
        assert_eq!(line_of(TEXT, "image.piece_size"), Some(2));
        assert_eq!(line_of(TEXT, "protocol.max_peers"), None);
        let at = TEXT.find("count = 0").unwrap();
        assert_eq!(key_at(TEXT, at).as_deref(), Some("group[1].count"));
        let at = TEXT.find("1 MiB").unwrap();
        assert_eq!(key_at(TEXT, at).as_deref(), Some("image.size"));
    }

    #[test]
    fn excerpts_of_long_lines_are_short() {
        let long = format!("x = \"{}\" y", "a".repeat(10_000_000));
        let at = long.len() - 1;
        let (ex, caret) = excerpt(&long, at);
        assert!(ex.chars().count() <= MAX_EXCERPT + 6, "{}", ex.len());
        assert!(ex.starts_with("...") && ex.ends_with('y'), "{ex}");
        assert_eq!(ex.chars().nth(caret), Some('y'));
        let (ex, caret) = excerpt("a = 1\nb = ?\n", 10);
        assert_eq!((ex.as_str(), caret), ("b = ?", 4));
    }
}
