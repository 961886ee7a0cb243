//! A photo's renditions as one object: one write and one sync, where a file (or S3 request) per
//! rendition cost more CPU than the encoding.

use pictureday_contract::events::RenditionRef;
use pictureday_imaging::Rendition;

/// The object to store at `key` (the renditions one after another, in order) and where each
/// rendition is in it, for `photo.processed`.
pub fn pack(renditions: Vec<Rendition>, key: &str) -> (Vec<u8>, Vec<RenditionRef>) {
    let total = renditions.iter().map(|r| r.jpeg.len()).sum();
    let mut packed = Vec::with_capacity(total);
    let mut refs = Vec::with_capacity(renditions.len());
    for rendition in renditions {
        refs.push(RenditionRef {
            name: rendition.name,
            width: rendition.width,
            height: rendition.height,
            bytes: rendition.jpeg.len() as u64,
            key: key.to_owned(),
            offset: Some(packed.len() as u64),
        });
        packed.extend_from_slice(&rendition.jpeg);
    }
    (packed, refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(name: &str, jpeg: &[u8]) -> Rendition {
        Rendition {
            name: name.to_owned(),
            width: 2,
            height: 3,
            jpeg: jpeg.to_vec(),
        }
    }

    #[test]
    fn each_rendition_is_found_at_its_offset() {
        let (packed, refs) = pack(
            vec![rendition("thumb", b"abc"), rendition("large", b"defgh")],
            "d/photos/p.jpgs",
        );
        assert_eq!(packed, b"abcdefgh");
        assert_eq!(refs.len(), 2);
        assert_eq!(
            (refs[0].name.as_str(), refs[0].range()),
            ("thumb", Some((0, 3)))
        );
        assert_eq!(
            (refs[1].name.as_str(), refs[1].range()),
            ("large", Some((3, 5)))
        );
        assert!(refs.iter().all(|r| r.key == "d/photos/p.jpgs"));
    }
}
