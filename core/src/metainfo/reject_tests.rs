//! Tests that hostile or broken metainfo is rejected with the right error.

use librqbit_bencode::{bencode_serialize_to_writer, from_bytes, BencodeValue, ByteBufOwned};
use proptest::prelude::*;
use sha1::{Digest, Sha1};

use super::tests::sample;
use super::*;

type Owned = BencodeValue<ByteBufOwned>;

fn key(k: &str) -> ByteBufOwned {
    ByteBufOwned::from(k.as_bytes())
}

fn bytes(b: &[u8]) -> Owned {
    BencodeValue::Bytes(ByteBufOwned::from(b))
}

fn encode(v: &Owned) -> Vec<u8> {
    let mut out = Vec::new();
    bencode_serialize_to_writer(v, &mut out).unwrap();
    out
}

/// Decode the sample, let `edit` change the top-level dictionary, re-encode, parse.
fn parse_edited(edit: impl FnOnce(&mut Owned)) -> Result<Metainfo, MetainfoError> {
    let mut root: Owned = from_bytes(&sample().to_bytes()).unwrap();
    edit(&mut root);
    Metainfo::from_bytes(&encode(&root))
}

fn entry<'v>(v: &'v mut Owned, k: &str) -> &'v mut Owned {
    match v {
        BencodeValue::Dict(d) => d.get_mut(k.as_bytes()).unwrap(),
        _ => panic!("not a dict"),
    }
}

fn set(v: &mut Owned, k: &str, value: Owned) {
    match v {
        BencodeValue::Dict(d) => {
            d.insert(key(k), value);
        }
        _ => panic!("not a dict"),
    }
}

fn remove(v: &mut Owned, k: &str) {
    match v {
        BencodeValue::Dict(d) => {
            d.remove(k.as_bytes()).unwrap();
        }
        _ => panic!("not a dict"),
    }
}

fn info(root: &mut Owned) -> &mut Owned {
    entry(root, "info")
}

fn file(root: &mut Owned, i: usize) -> &mut Owned {
    match entry(info(root), "files") {
        BencodeValue::List(l) => &mut l[i],
        _ => panic!("not a list"),
    }
}

fn set_path(root: &mut Owned, i: usize, parts: &[&[u8]]) {
    let list = parts.iter().map(|p| bytes(p)).collect();
    set(file(root, i), "path", BencodeValue::List(list));
}

fn missing_key(e: Result<Metainfo, MetainfoError>) -> String {
    match e {
        Err(MetainfoError::MissingKey { key }) => key,
        other => panic!("expected MissingKey, got {other:?}"),
    }
}

fn wrong_type(e: Result<Metainfo, MetainfoError>) -> String {
    match e {
        Err(MetainfoError::WrongType { key, .. }) => key,
        other => panic!("expected WrongType, got {other:?}"),
    }
}

#[test]
fn rejects_oversized_input() {
    let bytes = sample().to_bytes();
    let limits = MetainfoLimits {
        max_input_bytes: bytes.len() - 1,
        ..MetainfoLimits::default()
    };
    assert!(matches!(
        Metainfo::from_bytes_with_limits(&bytes, &limits),
        Err(MetainfoError::InputTooLarge { .. })
    ));
}

#[test]
fn rejects_non_bencode_and_trailing_bytes() {
    let bytes = sample().to_bytes();
    for bad in [
        &b""[..],
        b"hello",
        &bytes[..bytes.len() - 1],
        b"d4:infoi01ee",
    ] {
        assert!(
            matches!(
                Metainfo::from_bytes(bad),
                Err(MetainfoError::NotBencode { .. })
            ),
            "{bad:?}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(b'x');
    assert_eq!(
        Metainfo::from_bytes(&trailing),
        Err(MetainfoError::TrailingBytes {
            offset: bytes.len()
        })
    );
    // A huge integer would overflow librqbit-bencode's parser; the scan stops it.
    assert!(matches!(
        Metainfo::from_bytes(b"d1:xi99999999999999999999999ee"),
        Err(MetainfoError::NotBencode {
            problem: BencodeProblem::IntegerOutOfRange,
            ..
        })
    ));
}

#[test]
fn rejects_deep_nesting() {
    let mut bytes = sample().to_bytes();
    bytes.pop();
    bytes.extend(b"2:zz");
    bytes.extend([b'l'; 40]);
    bytes.extend([b'e'; 41]);
    assert!(matches!(
        Metainfo::from_bytes(&bytes),
        Err(MetainfoError::TooDeep { limit: 32, .. })
    ));
    let limits = MetainfoLimits {
        max_depth: 64,
        ..MetainfoLimits::default()
    };
    assert!(Metainfo::from_bytes_with_limits(&bytes, &limits).is_ok());
}

#[test]
fn rejects_missing_keys() {
    assert_eq!(missing_key(Metainfo::from_bytes(b"de")), "info");
    for k in ["name", "piece length", "files", "pieces"] {
        assert_eq!(
            missing_key(parse_edited(|r| remove(info(r), k))),
            format!("info.{k}")
        );
    }
    for k in ["length", "path", "sha256"] {
        assert_eq!(
            missing_key(parse_edited(|r| remove(file(r, 2), k))),
            format!("info.files[2].{k}")
        );
    }
}

#[test]
fn rejects_ill_typed_keys() {
    assert_eq!(wrong_type(Metainfo::from_bytes(b"li1ee")), "(top level)");
    assert_eq!(
        wrong_type(parse_edited(|r| set(r, "info", bytes(b"x")))),
        "info"
    );
    assert_eq!(
        wrong_type(parse_edited(|r| set(
            r,
            "announce",
            BencodeValue::Integer(1)
        ))),
        "announce"
    );
    let cases: Vec<(&str, Owned, &str)> = vec![
        ("name", BencodeValue::Integer(1), "info.name"),
        ("piece length", bytes(b"16384"), "info.piece length"),
        ("files", bytes(b"x"), "info.files"),
        (
            "files",
            BencodeValue::List(vec![bytes(b"x")]),
            "info.files[0]",
        ),
        ("pieces", BencodeValue::Integer(0), "info.pieces"),
        ("private", bytes(b"1"), "info.private"),
    ];
    for (k, value, want) in cases {
        assert_eq!(wrong_type(parse_edited(|r| set(info(r), k, value))), want);
    }
    assert_eq!(
        wrong_type(parse_edited(|r| set(
            file(r, 1),
            "length",
            BencodeValue::Integer(-1)
        ))),
        "info.files[1].length"
    );
    assert_eq!(
        wrong_type(parse_edited(|r| set(file(r, 1), "path", bytes(b"empty")))),
        "info.files[1].path"
    );
    assert_eq!(
        wrong_type(parse_edited(|r| set(
            file(r, 1),
            "path",
            BencodeValue::List(vec![BencodeValue::Integer(3)])
        ))),
        "info.files[1].path"
    );
}

#[test]
fn rejects_non_utf8_text() {
    assert_eq!(
        parse_edited(|r| set(info(r), "name", bytes(b"\xff\xfe"))),
        Err(MetainfoError::NotUtf8 {
            key: "info.name".to_owned()
        })
    );
    assert_eq!(
        parse_edited(|r| set_path(r, 0, &[b"ok", b"\xc3"])),
        Err(MetainfoError::NotUtf8 {
            key: "info.files[0].path".to_owned()
        })
    );
}

#[test]
fn rejects_bad_pieces() {
    let short = parse_edited(|r| {
        let BencodeValue::Bytes(p) = entry(info(r), "pieces") else {
            panic!()
        };
        let cut = p.as_ref()[..p.as_ref().len() - 1].to_vec();
        *p = ByteBufOwned::from(cut);
    });
    assert_eq!(short, Err(MetainfoError::PiecesNotMultipleOf20 { len: 99 }));
    let missing_one = parse_edited(|r| {
        let BencodeValue::Bytes(p) = entry(info(r), "pieces") else {
            panic!()
        };
        let cut = p.as_ref()[..80].to_vec();
        *p = ByteBufOwned::from(cut);
    });
    assert_eq!(
        missing_one,
        Err(MetainfoError::PieceCountMismatch {
            expected: 5,
            actual: 4
        })
    );
    // 20 GiB in 16 KiB pieces is 1,310,720 pieces.
    let too_many = parse_edited(|r| set(file(r, 0), "length", BencodeValue::Integer(20 << 30)));
    assert_eq!(
        too_many,
        Err(MetainfoError::TooManyPieces {
            count: ((20u64 << 30) + 35_000).div_ceil(16_384),
            limit: 1_000_000
        })
    );
}

#[test]
fn rejects_bad_piece_length() {
    for (value, power_of_two) in [
        (300_000, false),
        (16_385, false),
        (8_192, true),
        (32 << 20, true),
        (0, true),
        (-16_384, true),
    ] {
        let r = parse_edited(|r| set(info(r), "piece length", BencodeValue::Integer(value)));
        if power_of_two {
            assert!(
                matches!(r, Err(MetainfoError::PieceLengthOutOfRange { piece_length, .. }) if piece_length == value),
                "{value}: {r:?}"
            );
        } else {
            assert_eq!(
                r,
                Err(MetainfoError::PieceLengthNotPowerOfTwo {
                    piece_length: value
                })
            );
        }
    }
}

#[test]
fn rejects_sizes_over_the_limits() {
    let overflow = parse_edited(|r| {
        set(file(r, 0), "length", BencodeValue::Integer(i64::MAX));
        set(file(r, 3), "length", BencodeValue::Integer(i64::MAX));
    });
    assert!(matches!(
        overflow,
        Err(MetainfoError::TotalLengthTooLarge { .. })
    ));
    let huge = parse_edited(|r| set(file(r, 0), "length", BencodeValue::Integer(2 << 40)));
    assert_eq!(
        huge,
        Err(MetainfoError::TotalLengthTooLarge { limit: 1 << 40 })
    );
    let limits = MetainfoLimits {
        max_files: 3,
        ..MetainfoLimits::default()
    };
    assert_eq!(
        Metainfo::from_bytes_with_limits(&sample().to_bytes(), &limits),
        Err(MetainfoError::TooManyFiles { count: 4, limit: 3 })
    );
}

#[test]
fn rejects_empty_file_lists_and_empty_images() {
    assert_eq!(
        parse_edited(|r| set(info(r), "files", BencodeValue::List(Vec::new()))),
        Err(MetainfoError::NoFiles)
    );
    let empty = parse_edited(|r| {
        let BencodeValue::List(files) = entry(info(r), "files") else {
            panic!()
        };
        files.truncate(2);
        set(file(r, 0), "length", BencodeValue::Integer(0));
        set(info(r), "pieces", bytes(b""));
    });
    assert_eq!(empty, Err(MetainfoError::EmptyImage));
}

#[test]
fn rejects_bad_paths() {
    let cases: Vec<(Vec<&[u8]>, PathProblem)> = vec![
        (vec![], PathProblem::Empty),
        (vec![b"/etc", b"passwd"], PathProblem::Absolute),
        (vec![b"a", b""], PathProblem::EmptyComponent),
        (vec![b"."], PathProblem::Dot),
        (vec![b"..", b"etc"], PathProblem::DotDot),
        (vec![b"a/b"], PathProblem::Separator),
        (vec![b"a\\b"], PathProblem::Separator),
        (vec![b"a\0b"], PathProblem::Nul),
        (vec![b"C:"], PathProblem::DrivePrefix),
        (vec![b"x", b"c:evil"], PathProblem::DrivePrefix),
        (vec![b"a\x1b[2J"], PathProblem::ControlChar),
    ];
    for (parts, want) in cases {
        let r = parse_edited(|r| set_path(r, 3, &parts));
        assert!(
            matches!(&r, Err(MetainfoError::BadPath { file_index: 3, problem, .. }) if *problem == want),
            "{parts:?}: {r:?}"
        );
    }
    assert!(matches!(
        parse_edited(|r| set(info(r), "name", bytes(b".."))),
        Err(MetainfoError::BadName {
            problem: PathProblem::DotDot,
            ..
        })
    ));
}

#[test]
fn rejects_duplicate_and_conflicting_paths() {
    assert_eq!(
        parse_edited(|r| set_path(r, 3, &[b"etc", b"app.conf"])),
        Err(MetainfoError::DuplicatePath {
            file_index: 3,
            path: "etc/app.conf".to_owned()
        })
    );
    assert_eq!(
        parse_edited(|r| set_path(r, 3, &[b"bin", b"app", b"x"])),
        Err(MetainfoError::PathConflict {
            file_index: 3,
            path: "bin/app/x".to_owned(),
            file: "bin/app".to_owned()
        })
    );
}

#[test]
fn rejects_bad_sha256() {
    assert_eq!(
        parse_edited(|r| set(file(r, 2), "sha256", bytes(&[0; 31]))),
        Err(MetainfoError::BadSha256 {
            file_index: 2,
            len: 31
        })
    );
}

#[test]
fn rejects_public_torrents() {
    assert_eq!(
        parse_edited(|r| remove(info(r), "private")),
        Err(MetainfoError::NotPrivate { value: None })
    );
    for v in [0, 2] {
        assert_eq!(
            parse_edited(|r| set(info(r), "private", BencodeValue::Integer(v))),
            Err(MetainfoError::NotPrivate { value: Some(v) })
        );
    }
}

#[test]
fn rejects_unknown_info_keys_but_ignores_outer_ones() {
    assert_eq!(
        parse_edited(|r| set(info(r), "x-extra", bytes(b"1"))),
        Err(MetainfoError::NonCanonicalInfo)
    );
    let meta = sample();
    let outer = parse_edited(|r| set(r, "comment", bytes(b"hi"))).unwrap();
    assert_eq!(outer, meta);
}

proptest! {
    #[test]
    fn from_bytes_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..512)
    ) {
        let _ = Metainfo::from_bytes(&bytes);
    }

    #[test]
    fn from_bytes_never_panics_on_bencode_like_bytes(
        bytes in prop::collection::vec(
            prop::sample::select(b"dlie0123456789:-x".to_vec()), 0..256)
    ) {
        let _ = Metainfo::from_bytes(&bytes);
    }

    #[test]
    fn from_bytes_never_panics_on_mutations_of_valid_metainfo(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8)
    ) {
        let mut bytes = sample().to_bytes();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if !bytes.is_empty() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                2 if !bytes.is_empty() => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        if let Ok(meta) = Metainfo::from_bytes(&bytes) {
            // Whatever parses is self-consistent and re-encodes to the same swarm.
            let again = Metainfo::from_bytes(&meta.to_bytes()).unwrap();
            prop_assert_eq!(&again, &meta);
            let want: [u8; 20] = Sha1::digest(meta.info_bytes()).into();
            prop_assert_eq!(meta.info_hash.0, want);
        }
    }
}
