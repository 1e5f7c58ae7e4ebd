//! A bounded, iterative well-formedness check run on hostile bytes before they reach
//! librqbit-bencode.
//!
//! librqbit-bencode parses numbers with `atoi`'s unchecked `from_radix_10`, which
//! overflows on long digit strings (`i99999999999999999999e`, `99999999999999999999:`):
//! a panic in debug builds and a silently wrapped value in release builds. This scan
//! proves every integer fits in `i64`, every string length fits in the input, nesting
//! stays under a limit and dictionary keys are unique and sorted, so the decoder that
//! runs afterwards only ever sees canonical bencode. It produces no values: decoding
//! stays librqbit-bencode's job. Time is linear in the input, memory linear in the
//! depth limit, and there is no recursion.

use super::error::{BencodeProblem, MetainfoError};

/// Where a scan failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// Not canonical bencode.
    Malformed {
        offset: usize,
        problem: BencodeProblem,
    },
    /// Containers nested deeper than the limit.
    TooDeep { offset: usize, limit: usize },
    /// Bytes after the first complete value.
    Trailing { offset: usize },
}

impl From<ScanError> for MetainfoError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Malformed { offset, problem } => Self::NotBencode { offset, problem },
            ScanError::TooDeep { offset, limit } => Self::TooDeep { offset, limit },
            ScanError::Trailing { offset } => Self::TrailingBytes { offset },
        }
    }
}

/// One open container.
enum Frame {
    List,
    /// A dictionary; `last_key` is the span of the previous key, `awaiting_value`
    /// is set between a key and its value.
    Dict {
        last_key: Option<(usize, usize)>,
        awaiting_value: bool,
    },
}

/// Check that `buf` is exactly one canonical bencode value nested at most
/// `max_depth` containers deep (the outermost container counts as depth 1,
/// the same convention as `BencodeDeserializer::with_max_depth`).
pub(crate) fn check_bencode(buf: &[u8], max_depth: usize) -> Result<(), ScanError> {
    let malformed = |offset, problem| ScanError::Malformed { offset, problem };
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0usize;
    loop {
        let byte = *buf
            .get(pos)
            .ok_or(malformed(pos, BencodeProblem::UnexpectedEnd))?;

        // Container end, or a dictionary key.
        match stack.last_mut() {
            Some(Frame::List) if byte == b'e' => {
                stack.pop();
                pos += 1;
                if value_done(&mut stack) {
                    break;
                }
                continue;
            }
            Some(Frame::Dict { awaiting_value, .. }) if byte == b'e' => {
                if *awaiting_value {
                    return Err(malformed(pos, BencodeProblem::MissingValue));
                }
                stack.pop();
                pos += 1;
                if value_done(&mut stack) {
                    break;
                }
                continue;
            }
            Some(Frame::Dict {
                last_key,
                awaiting_value: awaiting_value @ false,
            }) => {
                if !byte.is_ascii_digit() {
                    return Err(malformed(pos, BencodeProblem::KeyNotString));
                }
                let (start, end) = scan_string(buf, pos)?;
                if let Some((prev_start, prev_end)) = *last_key {
                    match buf[prev_start..prev_end].cmp(&buf[start..end]) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => {
                            return Err(malformed(pos, BencodeProblem::DuplicateKey))
                        }
                        std::cmp::Ordering::Greater => {
                            return Err(malformed(pos, BencodeProblem::KeysNotSorted))
                        }
                    }
                }
                *last_key = Some((start, end));
                *awaiting_value = true;
                pos = end;
                continue;
            }
            _ => {}
        }

        // A value.
        match byte {
            b'i' => pos = scan_integer(buf, pos)?,
            b'0'..=b'9' => pos = scan_string(buf, pos)?.1,
            b'l' | b'd' => {
                if stack.len() >= max_depth {
                    return Err(ScanError::TooDeep {
                        offset: pos,
                        limit: max_depth,
                    });
                }
                stack.push(if byte == b'l' {
                    Frame::List
                } else {
                    Frame::Dict {
                        last_key: None,
                        awaiting_value: false,
                    }
                });
                pos += 1;
                continue;
            }
            other => return Err(malformed(pos, BencodeProblem::UnexpectedByte(other))),
        }
        if value_done(&mut stack) {
            break;
        }
    }
    if pos != buf.len() {
        return Err(ScanError::Trailing { offset: pos });
    }
    Ok(())
}

/// Record that a value just ended; true when it was the top-level value.
fn value_done(stack: &mut [Frame]) -> bool {
    match stack.last_mut() {
        None => true,
        Some(Frame::List) => false,
        Some(Frame::Dict { awaiting_value, .. }) => {
            *awaiting_value = false;
            false
        }
    }
}

/// Scan the digits of a canonical non-negative decimal starting at `pos`; returns
/// the value (`None` if it does not fit in `u64`) and the offset after the digits.
fn scan_digits(buf: &[u8], pos: usize) -> Result<(Option<u64>, usize), ScanError> {
    let rest = buf.get(pos..).unwrap_or_default();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        let problem = match buf.get(pos) {
            Some(&b) => BencodeProblem::UnexpectedByte(b),
            None => BencodeProblem::UnexpectedEnd,
        };
        return Err(ScanError::Malformed {
            offset: pos,
            problem,
        });
    }
    if digits > 1 && rest[0] == b'0' {
        return Err(ScanError::Malformed {
            offset: pos,
            problem: BencodeProblem::NonCanonicalNumber,
        });
    }
    let value = rest[..digits].iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Ok((value, pos + digits))
}

/// Scan `i<int>e` at `pos`; returns the offset after it.
fn scan_integer(buf: &[u8], pos: usize) -> Result<usize, ScanError> {
    let negative = buf.get(pos + 1) == Some(&b'-');
    let digits_at = pos + 1 + usize::from(negative);
    let (value, end) = scan_digits(buf, digits_at)?;
    let limit = if negative {
        i64::MIN.unsigned_abs()
    } else {
        i64::MAX.unsigned_abs()
    };
    match value {
        Some(0) if negative => {
            return Err(ScanError::Malformed {
                offset: digits_at,
                problem: BencodeProblem::NonCanonicalNumber,
            })
        }
        Some(v) if v <= limit => {}
        _ => {
            return Err(ScanError::Malformed {
                offset: digits_at,
                problem: BencodeProblem::IntegerOutOfRange,
            })
        }
    }
    match buf.get(end) {
        Some(b'e') => Ok(end + 1),
        Some(&b) => Err(ScanError::Malformed {
            offset: end,
            problem: BencodeProblem::UnexpectedByte(b),
        }),
        None => Err(ScanError::Malformed {
            offset: end,
            problem: BencodeProblem::UnexpectedEnd,
        }),
    }
}

/// Scan `<len>:<bytes>` at `pos`; returns the span of the bytes.
fn scan_string(buf: &[u8], pos: usize) -> Result<(usize, usize), ScanError> {
    let (len, colon) = scan_digits(buf, pos)?;
    match buf.get(colon) {
        Some(b':') => {}
        Some(&b) => {
            return Err(ScanError::Malformed {
                offset: colon,
                problem: BencodeProblem::UnexpectedByte(b),
            })
        }
        None => {
            return Err(ScanError::Malformed {
                offset: colon,
                problem: BencodeProblem::UnexpectedEnd,
            })
        }
    }
    let start = colon + 1;
    let available = buf.len() - start;
    match len.and_then(|l| usize::try_from(l).ok()) {
        Some(l) if l <= available => Ok((start, start + l)),
        _ => Err(ScanError::Malformed {
            offset: pos,
            problem: BencodeProblem::StringTooLong,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(buf: &[u8]) -> BencodeProblem {
        match check_bencode(buf, 32) {
            Err(ScanError::Malformed { problem, .. }) => problem,
            other => panic!("expected malformed for {buf:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_canonical_values() {
        for ok in [
            &b"i0e"[..],
            b"i-1e",
            b"i9223372036854775807e",
            b"i-9223372036854775808e",
            b"0:",
            b"3:abc",
            b"le",
            b"de",
            b"l3:abci1ee",
            b"d1:ai1e1:bl1:cee",
            b"d0:i0e1:ai0ee",
        ] {
            assert_eq!(
                check_bencode(ok, 32),
                Ok(()),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
    }

    #[test]
    fn rejects_malformed_numbers() {
        assert_eq!(problem(b"i01e"), BencodeProblem::NonCanonicalNumber);
        assert_eq!(problem(b"i-0e"), BencodeProblem::NonCanonicalNumber);
        assert_eq!(problem(b"01:a"), BencodeProblem::NonCanonicalNumber);
        assert_eq!(
            problem(b"i9223372036854775808e"),
            BencodeProblem::IntegerOutOfRange
        );
        assert_eq!(
            problem(b"i-9223372036854775809e"),
            BencodeProblem::IntegerOutOfRange
        );
        assert_eq!(
            problem(b"i99999999999999999999999e"),
            BencodeProblem::IntegerOutOfRange
        );
        assert_eq!(
            problem(b"99999999999999999999999:a"),
            BencodeProblem::StringTooLong
        );
        assert_eq!(problem(b"4:abc"), BencodeProblem::StringTooLong);
        assert_eq!(problem(b"ie"), BencodeProblem::UnexpectedByte(b'e'));
        assert_eq!(problem(b"i-e"), BencodeProblem::UnexpectedByte(b'e'));
        assert_eq!(problem(b"i12"), BencodeProblem::UnexpectedEnd);
        assert_eq!(problem(b"i1x"), BencodeProblem::UnexpectedByte(b'x'));
        assert_eq!(problem(b"3abc"), BencodeProblem::UnexpectedByte(b'a'));
    }

    #[test]
    fn rejects_bad_structure() {
        assert_eq!(problem(b""), BencodeProblem::UnexpectedEnd);
        assert_eq!(problem(b"l"), BencodeProblem::UnexpectedEnd);
        assert_eq!(problem(b"e"), BencodeProblem::UnexpectedByte(b'e'));
        assert_eq!(problem(b"x"), BencodeProblem::UnexpectedByte(b'x'));
        assert_eq!(problem(b"di1ei2ee"), BencodeProblem::KeyNotString);
        assert_eq!(problem(b"d1:ae"), BencodeProblem::MissingValue);
        assert_eq!(problem(b"d1:bi1e1:ai1ee"), BencodeProblem::KeysNotSorted);
        assert_eq!(problem(b"d1:ai1e1:ai1ee"), BencodeProblem::DuplicateKey);
    }

    #[test]
    fn trailing_bytes_are_reported_at_their_offset() {
        assert_eq!(
            check_bencode(b"dei1e", 32),
            Err(ScanError::Trailing { offset: 2 })
        );
        assert_eq!(
            check_bencode(b"i1ee", 32),
            Err(ScanError::Trailing { offset: 3 })
        );
    }

    #[test]
    fn depth_limit_counts_containers() {
        let nested = |n: usize| {
            let mut v = vec![b'l'; n];
            v.extend(std::iter::repeat_n(b'e', n));
            v
        };
        assert_eq!(check_bencode(&nested(4), 4), Ok(()));
        assert_eq!(
            check_bencode(&nested(5), 4),
            Err(ScanError::TooDeep {
                offset: 4,
                limit: 4
            })
        );
        // A megabyte of openers is a clean error, no recursion.
        let opened = vec![b'l'; 1 << 20];
        assert!(matches!(
            check_bencode(&opened, 32),
            Err(ScanError::TooDeep { limit: 32, .. })
        ));
    }
}
