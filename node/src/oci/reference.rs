//! Image references (`registry/repo:tag`, `repo@sha256:...`) and the hub
//! name an OCI repository is kept under.
//!
//! swarmhub names are one path component, OCI repositories have several:
//! `library/alpine:3.19` is kept as `library.alpine:3.19`. The mapping is not
//! one to one (`a.b/c` and `a/b.c` meet), so an image records the repository
//! it answers to and the mirror checks it.

use oci_spec::distribution::Reference;

use super::digest::Sha256Digest;
use crate::image::ImageName;

/// Longest repository name (distribution spec).
pub const MAX_REPOSITORY_LEN: usize = 255;

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository (`library/alpine`).
    pub repository: String,
    /// Tag, when given (`latest` when neither tag nor digest is).
    pub tag: Option<String>,
    /// Digest, when given.
    pub digest: Option<Sha256Digest>,
}

/// Why a reference or repository name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Not an image reference.
    #[error("image reference {input:?}: {detail}; write REGISTRY/REPOSITORY:TAG, e.g. registry.example:5000/team/app:1.2")]
    Invalid {
        /// The input.
        input: String,
        /// What the parser said.
        detail: String,
    },
    /// Not a repository name.
    #[error("repository name {0:?}: use lowercase path components of letters and digits separated by '/', joined inside by '.', '_', '__' or '-'")]
    BadRepository(String),
    /// The hub name would be invalid (too long).
    #[error(
        "repository {0:?} with tag {1:?} makes no valid hub image name (at most 128 bytes each)"
    )]
    NoHubName(String, String),
}

impl ImageRef {
    /// Parse as `docker pull` would (`alpine` is `docker.io/library/alpine:latest`).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let invalid = |detail: String| ReferenceError::Invalid {
            input: s.to_owned(),
            detail,
        };
        let r: Reference = s.parse().map_err(|e| invalid(format!("{e}")))?;
        let digest = match r.digest() {
            Some(d) => Some(d.parse().map_err(|e| invalid(format!("{e}")))?),
            None => None,
        };
        if !valid_repository(r.repository()) {
            return Err(ReferenceError::BadRepository(r.repository().to_owned()));
        }
        Ok(ImageRef {
            registry: r.registry().to_owned(),
            repository: r.repository().to_owned(),
            tag: r.tag().map(str::to_owned),
            digest,
        })
    }

    /// Where the registry's API is (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        match self.registry.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        }
    }

    /// The tag or digest to ask the registry for.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }
}

/// Is `name` an OCI repository name (`[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*`
/// components joined by `/`)?
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_REPOSITORY_LEN && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Is `tag` an OCI tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`)?
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
}

/// The hub image a repository's tag is kept as (`library/alpine`, `3.19` ->
/// `library.alpine:3.19`).
pub fn hub_name(repository: &str, tag: &str) -> Result<ImageName, ReferenceError> {
    if !valid_repository(repository) {
        return Err(ReferenceError::BadRepository(repository.to_owned()));
    }
    format!("{}:{tag}", repository.replace('/', "."))
        .parse()
        .map_err(|_| ReferenceError::NoHubName(repository.to_owned(), tag.to_owned()))
}

/// `--as NAME:TAG`: a repository (with `/` allowed) and a tag.
pub fn parse_as(s: &str) -> Result<(String, String), ReferenceError> {
    let bad = || ReferenceError::Invalid {
        input: s.to_owned(),
        detail: "--as takes REPOSITORY:TAG".into(),
    };
    let (repo, tag) = s.rsplit_once(':').ok_or_else(bad)?;
    if repo.contains(':') || !valid_tag(tag) {
        return Err(bad());
    }
    if !valid_repository(repo) {
        return Err(ReferenceError::BadRepository(repo.to_owned()));
    }
    hub_name(repo, tag)?;
    Ok((repo.to_owned(), tag.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_like_docker() {
        let r = ImageRef::parse("alpine").expect("alpine");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageRef::parse("127.0.0.1:5000/team/app:1.2").expect("local");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("127.0.0.1:5000", "team/app", "1.2".to_owned())
        );
        let d = Sha256Digest::of(b"x");
        let r = ImageRef::parse(&format!("reg.example/app@{d}")).expect("digest");
        assert_eq!(r.digest, Some(d));
        assert_eq!(r.reference(), d.to_string());
        for bad in [
            "",
            "UPPER/case:1",
            "a/../b:1",
            "app:bad tag",
            "app@sha256:12",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn repository_names_and_hub_names() {
        for ok in ["a", "library/alpine", "a-b/c__d/e.f", "x--y", "0/1"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "", "..", "a/../b", "a/./b", "A", "a//b", "/a", "a/", "a___b", "-a", "a.", "a b",
        ] {
            assert!(!valid_repository(bad), "{bad} accepted");
        }
        assert_eq!(
            hub_name("library/alpine", "3.19")
                .expect("name")
                .to_string(),
            "library.alpine:3.19"
        );
        assert!(hub_name("../x", "1").is_err());
        assert_eq!(
            parse_as("team/app:2").expect("as"),
            ("team/app".into(), "2".into())
        );
        assert!(parse_as("team/app").is_err());
        assert!(parse_as("Team/app:1").is_err());
        assert!(parse_as("app:.x").is_err());
    }
}
