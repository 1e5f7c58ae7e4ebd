//! Image names (`NAME:TAG`), checked before they touch a path or a query.

use std::fmt;
use std::str::FromStr;

/// Longest name or tag, in bytes.
pub const MAX_PART_LEN: usize = 128;

/// A parsed, validated `NAME:TAG`. Both parts are safe as one path component.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageName {
    /// Image name.
    pub name: String,
    /// Image tag.
    pub tag: String,
}

/// Why an image name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageNameError {
    /// No `:` between name and tag.
    #[error("image {0:?} has no tag: write NAME:TAG, e.g. ubuntu:24.04")]
    MissingTag(String),
    /// A path separator would let the name escape the image folder.
    #[error("image {0:?} contains a path separator ('/' or '\\'): names and tags are single words of letters, digits, '.', '_' and '-'")]
    PathSeparator(String),
    /// Some other forbidden character or shape.
    #[error("image {input:?}: {part} {value:?} {problem}")]
    BadPart {
        /// The whole input.
        input: String,
        /// "name" or "tag".
        part: &'static str,
        /// The offending part.
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
}

fn check_part(input: &str, part: &'static str, value: &str) -> Result<(), ImageNameError> {
    let bad = |problem| ImageNameError::BadPart {
        input: input.to_owned(),
        part,
        value: value.to_owned(),
        problem,
    };
    if value.is_empty() {
        return Err(bad("is empty"));
    }
    if value.len() > MAX_PART_LEN {
        return Err(bad("is longer than 128 bytes"));
    }
    if value.starts_with('.') || value.starts_with('-') {
        return Err(bad("must not start with '.' or '-'"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad(
            "may only contain ASCII letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

impl FromStr for ImageName {
    type Err = ImageNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') || s.contains('\\') {
            return Err(ImageNameError::PathSeparator(s.to_owned()));
        }
        let Some((name, tag)) = s.split_once(':') else {
            return Err(ImageNameError::MissingTag(s.to_owned()));
        };
        check_part(s, "name", name)?;
        check_part(s, "tag", tag)?;
        Ok(ImageName {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        let n: ImageName = "ubuntu:24.04".parse().expect("valid");
        assert_eq!((n.name.as_str(), n.tag.as_str()), ("ubuntu", "24.04"));
        assert_eq!(n.to_string(), "ubuntu:24.04");
    }

    #[test]
    fn refuses_escapes_and_junk() {
        assert!(matches!(
            "../etc:x".parse::<ImageName>(),
            Err(ImageNameError::PathSeparator(_))
        ));
        assert!(matches!(
            "a\\b:x".parse::<ImageName>(),
            Err(ImageNameError::PathSeparator(_))
        ));
        assert!(matches!(
            "ubuntu".parse::<ImageName>(),
            Err(ImageNameError::MissingTag(_))
        ));
        for bad in ["..:x", "a:..", ":x", "a:", "a b:c", "a:b:c", ".hidden:1"] {
            assert!(bad.parse::<ImageName>().is_err(), "{bad} accepted");
        }
    }
}
