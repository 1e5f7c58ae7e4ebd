//! Images made of layers (a container image's blobs, in order) and the
//! layers a group's machines already hold, from an earlier image that shares
//! them: the simulator then predicts the pull of a new image version over a
//! fleet that has the old one. A piece wholly inside held layers starts in
//! the machine's have-set, as the real mirror copies blobs it holds under the
//! same digest into the new download; pieces straddling a new layer are fetched.

use serde::Deserialize;
use swarmhub_core::pieceset::PieceSet;

use super::Scenario;
use crate::units::Size;

/// One layer of the image.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Name, as groups' `local_layers` refer to it.
    pub name: String,
    /// Size.
    pub size: Size,
}

/// Check layers against the image and the groups: (key, problem) when wrong.
pub(super) fn validate(s: &Scenario) -> Result<(), (String, String)> {
    let layers = &s.image.layers;
    for (i, l) in layers.iter().enumerate() {
        if l.size.0 == 0 {
            return Err((
                format!("image.layers[{i}].size"),
                "must be above zero".into(),
            ));
        }
        if layers[..i].iter().any(|o| o.name == l.name) {
            return Err((
                format!("image.layers[{i}].name"),
                format!("{:?} is used twice", l.name),
            ));
        }
    }
    if !layers.is_empty() {
        let sum: u64 = layers.iter().map(|l| l.size.0).sum();
        if sum != s.image.size.0 {
            return Err((
                "image.size".into(),
                format!(
                    "the layers add up to {sum} bytes but image.size is {} bytes; make them equal",
                    s.image.size.0
                ),
            ));
        }
    }
    for (i, g) in s.groups.iter().enumerate() {
        for name in &g.local_layers {
            if !layers.iter().any(|l| &l.name == name) {
                let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
                return Err((
                    format!("group[{i}].local_layers"),
                    format!("unknown layer {name:?}; the image's layers: {names:?}"),
                ));
            }
        }
        if !g.local_layers.is_empty() && layers.iter().all(|l| g.local_layers.contains(&l.name)) {
            return Err((
                format!("group[{i}].local_layers"),
                "holds every layer, so there is nothing to pull; leave one out".into(),
            ));
        }
    }
    Ok(())
}

/// The pieces wholly inside the layers named `held`.
pub fn local_pieces(s: &Scenario, held: &[String]) -> PieceSet {
    let piece = u64::from(s.piece_size());
    let size = s.image.size.0;
    let num = size.div_ceil(piece) as u32;
    let mut have = PieceSet::new(num);
    // Held byte ranges, adjacent ones merged.
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut offset = 0;
    for l in &s.image.layers {
        let end = offset + l.size.0;
        if held.contains(&l.name) {
            match ranges.last_mut() {
                Some(r) if r.1 == offset => r.1 = end,
                _ => ranges.push((offset, end)),
            }
        }
        offset = end;
    }
    for p in 0..num {
        let (a, b) = (
            u64::from(p) * piece,
            (u64::from(p) * piece + piece).min(size),
        );
        if ranges.iter().any(|&(x, y)| x <= a && b <= y) {
            have.insert(p);
        }
    }
    have
}
