//! Tests of building, encoding and parsing metainfo; rejections are in `reject_tests`.

use proptest::prelude::*;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::*;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Deterministic file contents.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

/// Files of the sample image: nested paths, an empty file, boundaries inside pieces.
fn sample_files() -> Vec<(Vec<String>, Vec<u8>)> {
    vec![
        (path(&["bin", "app"]), content(40_000, 1)),
        (path(&["empty"]), Vec::new()),
        (path(&["etc", "app.conf"]), content(5_000, 2)),
        (path(&["z"]), content(30_000, 3)),
    ]
}

fn declared(files: &[(Vec<String>, Vec<u8>)]) -> Vec<(Vec<String>, u64)> {
    files
        .iter()
        .map(|(p, c)| (p.clone(), c.len() as u64))
        .collect()
}

fn build_in_one_go(files: &[(Vec<String>, Vec<u8>)], piece_length: Option<u32>) -> Metainfo {
    let mut hasher = ImageHasher::new("app:1.0", declared(files), piece_length).unwrap();
    for (_, bytes) in files {
        hasher.update(bytes);
    }
    hasher
        .finish(Some("https://hub.local:8443/announce".to_owned()))
        .unwrap()
}

/// 75,000 bytes in 16 KiB pieces: 5 pieces.
pub(super) fn sample() -> Metainfo {
    build_in_one_go(&sample_files(), Some(16 * 1024))
}

#[test]
fn built_metainfo_hashes_pieces_and_files() {
    let files = sample_files();
    let meta = sample();
    let image: Vec<u8> = files.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(meta.total_length(), 75_000);
    assert_eq!(meta.num_pieces(), 5);
    assert_eq!(meta.piece_len(4), 75_000 - 4 * 16_384);
    assert!(meta.private);
    for (i, chunk) in image.chunks(16_384).enumerate() {
        let want: [u8; 20] = Sha1::digest(chunk).into();
        assert_eq!(meta.pieces[i].0, want, "piece {i}");
    }
    for (file, (p, bytes)) in meta.files.iter().zip(&files) {
        let want: [u8; 32] = Sha256::digest(bytes).into();
        assert_eq!(&file.path, p);
        assert_eq!(file.sha256, want, "{p:?}");
    }
}

#[test]
fn round_trip_preserves_everything_and_the_info_hash() {
    let meta = sample();
    let bytes = meta.to_bytes();
    let parsed = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(parsed, meta);
    assert_eq!(parsed.to_bytes(), bytes);

    let mut no_announce = meta.clone();
    no_announce.announce = None;
    let parsed = Metainfo::from_bytes(&no_announce.to_bytes()).unwrap();
    assert_eq!(parsed, no_announce);
    assert_eq!(parsed.info_hash, meta.info_hash, "announce is outside info");
}

#[test]
fn info_hash_is_sha1_of_the_info_span() {
    let meta = sample();
    let bytes = meta.to_bytes();
    // `announce` sorts before `info`, so the info dict runs to the final `e`.
    let key = bytes.windows(6).position(|w| w == b"4:info").unwrap();
    let span = &bytes[key + 6..bytes.len() - 1];
    assert_eq!(span, meta.info_bytes().as_slice());
    let want: [u8; 20] = Sha1::digest(span).into();
    assert_eq!(meta.info_hash.0, want);
    assert_eq!(Metainfo::from_bytes(&bytes).unwrap().info_hash.0, want);
}

#[test]
fn encoding_is_pinned() {
    let meta = Metainfo {
        info_hash: Id20::default(),
        name: "t:1".to_owned(),
        piece_length: 16_384,
        pieces: vec![Id20::new([7; 20])],
        files: vec![ImageFile {
            path: path(&["d", "f"]),
            length: 3,
            sha256: [9; 32],
        }],
        announce: Some("http://h/a".to_owned()),
        private: true,
    };
    let mut want =
        b"d8:announce10:http://h/a4:infod5:filesld6:lengthi3e4:pathl1:d1:fe6:sha25632:".to_vec();
    want.extend([9; 32]);
    want.extend(b"ee4:name3:t:112:piece lengthi16384e6:pieces20:");
    want.extend([7; 20]);
    want.extend(b"7:privatei1eee");
    assert_eq!(meta.to_bytes(), want);
    let parsed = Metainfo::from_bytes(&want).unwrap();
    let info_hash: [u8; 20] = Sha1::digest(meta.info_bytes()).into();
    assert_eq!(parsed.info_hash.0, info_hash);
}

#[test]
fn piece_length_for_known_sizes() {
    assert_eq!(piece_length_for(MIB), 256 * KIB as u32);
    assert_eq!(piece_length_for(300 * MIB), 256 * KIB as u32);
    assert_eq!(piece_length_for(GIB), MIB as u32);
    assert_eq!(piece_length_for(10 * GIB), 4 * MIB as u32);
    assert_eq!(piece_length_for(100 * GIB), 4 * MIB as u32);
}

#[test]
fn piece_length_for_boundaries() {
    assert_eq!(piece_length_for(0), 256 * KIB as u32);
    assert_eq!(piece_length_for(1), 256 * KIB as u32);
    assert_eq!(piece_length_for(2000 * 256 * KIB), 256 * KIB as u32);
    assert_eq!(piece_length_for(2000 * 256 * KIB + 1), 512 * KIB as u32);
    assert_eq!(piece_length_for(2000 * MIB), MIB as u32);
    assert_eq!(piece_length_for(2000 * MIB + 1), 2 * MIB as u32);
    assert_eq!(piece_length_for(2000 * 2 * MIB), 2 * MIB as u32);
    assert_eq!(piece_length_for(2000 * 2 * MIB + 1), 4 * MIB as u32);
    assert_eq!(piece_length_for(2000 * 4 * MIB + 1), 4 * MIB as u32);
    assert_eq!(piece_length_for(u64::MAX), 4 * MIB as u32);
}

proptest! {
    #[test]
    fn piece_length_for_gives_1000_to_2000_pieces_in_the_middle(
        total in (2000 * 256 * KIB + 1)..=(2000 * 4 * MIB)
    ) {
        let p = piece_length_for(total);
        prop_assert!(p.is_power_of_two());
        let pieces = total.div_ceil(u64::from(p));
        prop_assert!((1000..=2000).contains(&pieces), "{total} -> {p} -> {pieces}");
    }
}

#[test]
fn hasher_picks_a_piece_length_when_not_given() {
    let meta = build_in_one_go(&sample_files(), None);
    assert_eq!(meta.piece_length, 256 * 1024);
    assert_eq!(meta.num_pieces(), 1);
}

#[test]
fn hasher_rejects_a_wrong_byte_count() {
    let files = vec![(path(&["a"]), 10), (path(&["b"]), 5)];
    let mut short = ImageHasher::new("x", files.clone(), None).unwrap();
    short.update(&[0; 14]);
    assert_eq!(
        short.finish(None),
        Err(BuildError::LengthMismatch {
            declared: 15,
            fed: 14
        })
    );
    let mut long = ImageHasher::new("x", files, None).unwrap();
    long.update(&[0; 15]);
    long.update(&[0; 1]);
    assert_eq!(
        long.finish(None),
        Err(BuildError::LengthMismatch {
            declared: 15,
            fed: 16
        })
    );
}

#[test]
fn hasher_validates_like_the_parser() {
    let bad_path = ImageHasher::new("x", vec![(path(&["..", "etc"]), 1)], None);
    assert!(matches!(
        bad_path,
        Err(BuildError::Invalid(MetainfoError::BadPath {
            problem: PathProblem::DotDot,
            ..
        }))
    ));
    let bad_piece = ImageHasher::new("x", vec![(path(&["a"]), 1)], Some(100_000));
    assert!(matches!(
        bad_piece,
        Err(BuildError::Invalid(
            MetainfoError::PieceLengthNotPowerOfTwo { .. }
        ))
    ));
    let bad_name = ImageHasher::new("a/b", vec![(path(&["a"]), 1)], None);
    assert!(matches!(
        bad_name,
        Err(BuildError::Invalid(MetainfoError::BadName { .. }))
    ));
    let empty = ImageHasher::new("x", vec![(path(&["a"]), 0)], None);
    assert!(matches!(
        empty,
        Err(BuildError::Invalid(MetainfoError::EmptyImage))
    ));
    let dup = ImageHasher::new("x", vec![(path(&["a"]), 1), (path(&["a"]), 1)], None);
    assert!(matches!(
        dup,
        Err(BuildError::Invalid(MetainfoError::DuplicatePath {
            file_index: 1,
            ..
        }))
    ));
    let too_many_pieces = ImageHasher::new("x", vec![(path(&["a"]), 20 * GIB)], Some(16 * 1024));
    assert!(matches!(
        too_many_pieces,
        Err(BuildError::Invalid(MetainfoError::TooManyPieces { .. }))
    ));
}

proptest! {
    #[test]
    fn hasher_result_does_not_depend_on_chunking(
        lens in prop::collection::vec(0usize..40_000, 1..5),
        chunks in prop::collection::vec(1usize..20_000, 1..30),
    ) {
        prop_assume!(lens.iter().sum::<usize>() > 0);
        let files: Vec<(Vec<String>, Vec<u8>)> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| (vec![format!("f{i}")], content(len, i as u8)))
            .collect();
        let whole = build_in_one_go(&files, Some(16 * 1024));
        let image: Vec<u8> = files.iter().flat_map(|(_, c)| c.clone()).collect();
        let mut hasher = ImageHasher::new("app:1.0", declared(&files), Some(16 * 1024)).unwrap();
        let mut rest = image.as_slice();
        for size in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            hasher.update(chunk);
            hasher.update(&[]);
            rest = tail;
        }
        let chunked = hasher.finish(Some("https://hub.local:8443/announce".to_owned())).unwrap();
        prop_assert_eq!(chunked, whole);
    }
}

/// Check that the spans of all pieces walk every byte of every file once, in order.
fn assert_spans_cover_image(meta: &Metainfo) {
    let (mut file_index, mut file_offset) = (0usize, 0u64);
    for piece in 0..meta.num_pieces() {
        let mut piece_offset = 0u32;
        for span in meta.file_spans(piece) {
            while meta.files[file_index].length == file_offset {
                file_index += 1;
                file_offset = 0;
            }
            assert!(span.len > 0);
            assert_eq!(
                (span.file_index, span.file_offset, span.piece_offset),
                (file_index, file_offset, piece_offset),
                "piece {piece}"
            );
            assert!(span.file_offset + u64::from(span.len) <= meta.files[file_index].length);
            file_offset += u64::from(span.len);
            piece_offset += span.len;
        }
        assert_eq!(piece_offset, meta.piece_len(piece), "piece {piece} length");
    }
    assert!(meta.files[file_index..]
        .iter()
        .skip(1)
        .all(|f| f.length == 0));
    assert_eq!(file_offset, meta.files[file_index].length);
    assert_eq!(meta.file_spans(meta.num_pieces()).count(), 0);
}

#[test]
fn file_spans_of_the_sample() {
    let meta = sample();
    assert_spans_cover_image(&meta);
    // Piece 2 (bytes 32768..49152) ends bin/app, skips `empty`, covers app.conf
    // and starts z.
    let spans: Vec<FileSpan> = meta.file_spans(2).collect();
    assert_eq!(
        spans,
        vec![
            FileSpan {
                file_index: 0,
                file_offset: 32_768,
                piece_offset: 0,
                len: 7_232
            },
            FileSpan {
                file_index: 2,
                file_offset: 0,
                piece_offset: 7_232,
                len: 5_000
            },
            FileSpan {
                file_index: 3,
                file_offset: 0,
                piece_offset: 12_232,
                len: 4_152
            },
        ]
    );
}

proptest! {
    #[test]
    fn file_spans_cover_every_byte_once_in_order(
        lens in prop::collection::vec(prop_oneof![Just(0u64), 1u64..100_000, 16_384u64..16_385], 1..12),
        shift in 14u32..18,
    ) {
        prop_assume!(lens.iter().sum::<u64>() > 0);
        let meta = Metainfo {
            info_hash: Id20::default(),
            name: "x".to_owned(),
            piece_length: 1 << shift,
            pieces: Vec::new(),
            files: lens
                .iter()
                .enumerate()
                .map(|(i, &length)| ImageFile { path: vec![format!("{i}")], length, sha256: [0; 32] })
                .collect(),
            announce: None,
            private: true,
        };
        assert_spans_cover_image(&meta);
    }
}

#[test]
fn synthetic_is_deterministic_and_parses() {
    let a = Metainfo::synthetic("sim:1", GIB, 0, 42);
    assert_eq!(a.piece_length, MIB as u32);
    assert_eq!(a.num_pieces(), 1024);
    assert_eq!(a.pieces.len(), 1024);
    assert_eq!(a, Metainfo::synthetic("sim:1", GIB, 0, 42));
    let b = Metainfo::synthetic("sim:1", GIB, 0, 43);
    assert_ne!(a.pieces, b.pieces);
    assert_ne!(a.info_hash, b.info_hash);
    assert_eq!(Metainfo::from_bytes(&a.to_bytes()).unwrap(), a);
    let odd = Metainfo::synthetic("sim:2", 100_000, 16_384, 1);
    assert_eq!(odd.num_pieces(), 7);
    assert_eq!(odd.geometry(), Geometry::new(100_000, 16_384));
}
