//! Rules shared by parsing and building: names, paths, piece length, sizes.

use super::error::{MetainfoError, PathProblem};
use super::{ImageFile, MetainfoLimits, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH};

/// Check an image name. A name is a label (`NAME:TAG`, so `:` is allowed), but it
/// must still be one harmless path component, since drivers may show or store it.
pub(crate) fn check_name(name: &str, limits: &MetainfoLimits) -> Result<(), MetainfoError> {
    let problem = if name.is_empty() {
        Some(PathProblem::Empty)
    } else {
        check_component_common(name, limits).err()
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(MetainfoError::BadName {
            name: name.to_owned(),
            problem,
        }),
    }
}

/// Rules every path component and the name obey.
fn check_component_common(c: &str, limits: &MetainfoLimits) -> Result<(), PathProblem> {
    if c.len() > limits.max_component_bytes {
        return Err(PathProblem::ComponentTooLong {
            len: c.len(),
            limit: limits.max_component_bytes,
        });
    }
    match c {
        "" => return Err(PathProblem::EmptyComponent),
        "." => return Err(PathProblem::Dot),
        ".." => return Err(PathProblem::DotDot),
        _ => {}
    }
    for b in c.bytes() {
        match b {
            b'/' | b'\\' => return Err(PathProblem::Separator),
            0 => return Err(PathProblem::Nul),
            b if b.is_ascii_control() => return Err(PathProblem::ControlChar),
            _ => {}
        }
    }
    Ok(())
}

/// Check one file path (components relative to the image root).
pub(crate) fn check_path(path: &[String], limits: &MetainfoLimits) -> Result<(), PathProblem> {
    let Some(first) = path.first() else {
        return Err(PathProblem::Empty);
    };
    let total = path
        .iter()
        .map(String::len)
        .sum::<usize>()
        .saturating_add(path.len() - 1);
    if total > limits.max_path_bytes {
        return Err(PathProblem::TooLong {
            len: total,
            limit: limits.max_path_bytes,
        });
    }
    if first.starts_with('/') || first.starts_with('\\') {
        return Err(PathProblem::Absolute);
    }
    for c in path {
        check_component_common(c, limits)?;
        if let [drive, b':', ..] = c.as_bytes() {
            if drive.is_ascii_alphabetic() {
                return Err(PathProblem::DrivePrefix);
            }
        }
    }
    Ok(())
}

/// A path for error messages.
pub(crate) fn display_path(path: &[String]) -> String {
    path.join("/")
}

/// Check a piece length found in (or asked for) metainfo.
pub(crate) fn check_piece_length(piece_length: i64) -> Result<u32, MetainfoError> {
    let in_range = u32::try_from(piece_length)
        .ok()
        .filter(|p| (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(p));
    let Some(p) = in_range else {
        return Err(MetainfoError::PieceLengthOutOfRange {
            piece_length,
            min: MIN_PIECE_LENGTH,
            max: MAX_PIECE_LENGTH,
        });
    };
    if !p.is_power_of_two() {
        return Err(MetainfoError::PieceLengthNotPowerOfTwo { piece_length });
    }
    Ok(p)
}

/// Check a file list: count, paths, uniqueness, total size. Returns the total size.
pub(crate) fn check_files(
    files: &[ImageFile],
    limits: &MetainfoLimits,
) -> Result<u64, MetainfoError> {
    if files.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    if files.len() > limits.max_files {
        return Err(MetainfoError::TooManyFiles {
            count: files.len(),
            limit: limits.max_files,
        });
    }
    let mut total = 0u64;
    for (file_index, f) in files.iter().enumerate() {
        check_path(&f.path, limits).map_err(|problem| MetainfoError::BadPath {
            file_index,
            path: display_path(&f.path),
            problem,
        })?;
        total = total
            .checked_add(f.length)
            .filter(|t| *t <= limits.max_total_length)
            .ok_or(MetainfoError::TotalLengthTooLarge {
                limit: limits.max_total_length,
            })?;
    }
    check_unique(files)?;
    if total == 0 {
        return Err(MetainfoError::EmptyImage);
    }
    Ok(total)
}

/// Reject duplicate paths and a file whose path runs through another file.
fn check_unique(files: &[ImageFile]) -> Result<(), MetainfoError> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    // Stable, so of two equal paths the lower index comes first.
    order.sort_by(|&a, &b| files[a].path.cmp(&files[b].path));
    // In component-wise order, every path that starts with `p` sorts right after `p`,
    // so comparing neighbours finds every clash.
    for pair in order.windows(2) {
        let (first, second) = (&files[pair[0]], &files[pair[1]]);
        if first.path == second.path {
            return Err(MetainfoError::DuplicatePath {
                file_index: pair[1],
                path: display_path(&second.path),
            });
        }
        if second.path.starts_with(&first.path) {
            return Err(MetainfoError::PathConflict {
                file_index: pair[1],
                path: display_path(&second.path),
                file: display_path(&first.path),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    fn problem(parts: &[&str]) -> Option<PathProblem> {
        check_path(&path(parts), &MetainfoLimits::default()).err()
    }

    #[test]
    fn path_rules() {
        assert_eq!(problem(&["bin", "app"]), None);
        assert_eq!(
            problem(&["ab:c", "1:x"]),
            None,
            "only letter + colon is a drive"
        );
        assert_eq!(problem(&["...", ".hidden"]), None);
        assert_eq!(problem(&[]), Some(PathProblem::Empty));
        assert_eq!(problem(&["/etc", "passwd"]), Some(PathProblem::Absolute));
        assert_eq!(problem(&["\\evil"]), Some(PathProblem::Absolute));
        assert_eq!(problem(&["a", ""]), Some(PathProblem::EmptyComponent));
        assert_eq!(problem(&["a", "."]), Some(PathProblem::Dot));
        assert_eq!(problem(&["..", "x"]), Some(PathProblem::DotDot));
        assert_eq!(problem(&["a/b"]), Some(PathProblem::Separator));
        assert_eq!(problem(&["a\\b"]), Some(PathProblem::Separator));
        assert_eq!(problem(&["a\0b"]), Some(PathProblem::Nul));
        assert_eq!(problem(&["a\nb"]), Some(PathProblem::ControlChar));
        assert_eq!(problem(&["C:"]), Some(PathProblem::DrivePrefix));
        assert_eq!(problem(&["x", "d:evil"]), Some(PathProblem::DrivePrefix));
        let long = "x".repeat(256);
        assert!(matches!(
            problem(&[long.as_str()]),
            Some(PathProblem::ComponentTooLong { len: 256, .. })
        ));
        let many = vec!["abcdefgh"; 500];
        assert!(matches!(
            problem(&many),
            Some(PathProblem::TooLong { len: 4499, .. })
        ));
    }

    #[test]
    fn name_rules() {
        let limits = MetainfoLimits::default();
        assert_eq!(check_name("ubuntu:22.04", &limits), Ok(()));
        assert_eq!(check_name("C:tag", &limits), Ok(()), "a name is not a path");
        for (bad, want) in [
            ("", PathProblem::Empty),
            ("..", PathProblem::DotDot),
            ("a/b", PathProblem::Separator),
            ("a\0", PathProblem::Nul),
        ] {
            match check_name(bad, &limits) {
                Err(MetainfoError::BadName { problem, .. }) => assert_eq!(problem, want),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn piece_length_rules() {
        assert_eq!(check_piece_length(16 * 1024), Ok(16 * 1024));
        assert_eq!(check_piece_length(16 << 20), Ok(16 << 20));
        for bad in [0, -1, 8 * 1024, 32 << 20, i64::MAX] {
            assert!(
                matches!(
                    check_piece_length(bad),
                    Err(MetainfoError::PieceLengthOutOfRange { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            check_piece_length(300_000),
            Err(MetainfoError::PieceLengthNotPowerOfTwo {
                piece_length: 300_000
            })
        ));
    }
}
