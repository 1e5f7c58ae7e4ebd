//! Checks shared by the integration tests: charts parse and are not blank.

use std::path::Path;

/// Decode a PNG and check it has the chart size and real content: many
/// distinct colours and a fair share of non-white pixels.
pub(crate) fn check_png(path: &Path) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1000, 600), "{}", path.display());
    let bpp = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(bpp).collect();
    let non_white = pixels
        .iter()
        .filter(|p| p.iter().take(3).any(|c| *c < 250))
        .count();
    let distinct: std::collections::BTreeSet<&[u8]> = pixels.iter().copied().collect();
    assert!(
        non_white * 50 > pixels.len(),
        "{}: only {non_white} non-white pixels",
        path.display()
    );
    assert!(
        distinct.len() > 20,
        "{}: only {} colours (text antialiasing alone gives more)",
        path.display(),
        distinct.len()
    );
}

/// Parse an SVG and check it has a title text and drawn shapes.
pub(crate) fn check_svg(path: &Path, title: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains(title)),
        "{}: no text containing {title:?} in {texts:?}",
        path.display()
    );
    let shapes = doc
        .descendants()
        .filter(|n| {
            ["polyline", "path", "rect", "circle", "line", "polygon"]
                .iter()
                .any(|t| n.has_tag_name(*t))
        })
        .count();
    assert!(shapes > 10, "{}: only {shapes} shapes", path.display());
}
