//! Which key a file is matched by.

use pictureday_contract::events::PhotoIngested;

#[derive(Debug, PartialEq, Eq)]
pub enum MatchKey {
    /// Look this key up in the roster.
    Lookup(String),
    /// The file cannot be matched; the reason says why.
    Unmatchable(String),
}

/// The mapping's identifier when the upload has a mapping, else the file name's stem
/// (`photos/1234.jpg` → `1234`).
pub fn match_key(event: &PhotoIngested) -> MatchKey {
    if let Some(mapped) = &event.mapped_key {
        return MatchKey::Lookup(mapped.value.trim().to_owned());
    }
    if event.has_mapping {
        return MatchKey::Unmatchable("not listed in the mapping CSV".into());
    }
    let stem = file_stem(&event.file.file_name);
    if stem.is_empty() {
        return MatchKey::Unmatchable(
            "the file name has no identifier before its extension".into(),
        );
    }
    MatchKey::Lookup(stem.to_owned())
}

pub fn file_stem(path: &str) -> &str {
    let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let stem = match base.rfind('.') {
        Some(0) | None => base,
        Some(dot) => &base[..dot],
    };
    stem.trim()
}

#[cfg(test)]
mod tests {
    use pictureday_contract::DistrictId;
    use pictureday_contract::events::{FileRef, MappedKey, Source};

    use super::*;

    fn event(name: &str, has_mapping: bool, mapped: Option<&str>) -> anyhow::Result<PhotoIngested> {
        Ok(PhotoIngested {
            v: 1,
            file: FileRef {
                district: DistrictId::parse("d")?,
                job_id: "j".into(),
                seq: 0,
                file_name: name.into(),
                replay: 0,
            },
            source: Source::Object {
                key: "k".into(),
                size: 1,
            },
            has_mapping,
            mapped_key: mapped.map(|v| MappedKey {
                value: v.into(),
                row: 3,
            }),
        })
    }

    #[test]
    fn stems_come_from_the_base_name() {
        assert_eq!(file_stem("1234.jpg"), "1234");
        assert_eq!(file_stem("grade 5/1234.JPG"), "1234");
        assert_eq!(file_stem("a\\b\\S-77.png"), "S-77");
        assert_eq!(file_stem("ada@example.org.jpeg"), "ada@example.org");
        assert_eq!(file_stem("noext"), "noext");
        assert_eq!(file_stem(".jpg"), ".jpg");
    }

    #[test]
    fn the_mapping_decides_when_present() -> anyhow::Result<()> {
        assert_eq!(
            match_key(&event("x.jpg", true, Some(" ada@example.org "))?),
            MatchKey::Lookup("ada@example.org".into())
        );
        assert_eq!(
            match_key(&event("1234.jpg", true, None)?),
            MatchKey::Unmatchable("not listed in the mapping CSV".into())
        );
        assert_eq!(
            match_key(&event("1234.jpg", false, None)?),
            MatchKey::Lookup("1234".into())
        );
        Ok(())
    }
}
