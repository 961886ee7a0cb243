//! What a file offers to be matched on: the person it was uploaded for, its mapping row, its
//! photographer's index row, or its name.

use pictureday_contract::events::{MatchQuery, PhotoIngested};

#[derive(Debug, PartialEq, Eq)]
pub enum MatchKey {
    /// Ask the roster.
    Lookup(MatchQuery),
    /// The file cannot be matched; the reason says why.
    Unmatchable(String),
}

/// A file uploaded for one person is that person's, if the roster still has them: its name says
/// nothing. Otherwise the upload's own word first (a reason it cannot be matched), then its
/// mapping, then its photographer's index, and only when the upload has neither, the file name's
/// stem (`photos/1234.jpg` → `1234`), in which ids inside a longer name count too.
pub fn match_key(event: &PhotoIngested) -> MatchKey {
    if let Some(person_id) = &event.chosen_person {
        return MatchKey::Lookup(MatchQuery::Person {
            person_id: person_id.clone(),
        });
    }
    if let Some(reason) = &event.unmatchable {
        return MatchKey::Unmatchable(reason.clone());
    }
    if let Some(mapped) = &event.mapped_key {
        return MatchKey::Lookup(MatchQuery::Identifier {
            value: mapped.value.trim().to_owned(),
            file_name: false,
        });
    }
    if event.has_mapping {
        return MatchKey::Unmatchable("not listed in the mapping CSV".into());
    }
    if let Some(entry) = &event.index_entry {
        return MatchKey::Lookup(MatchQuery::Name(entry.clone()));
    }
    if let Some(index) = &event.index {
        return MatchKey::Unmatchable(format!("not in the index ({index})"));
    }
    let stem = file_stem(&event.file.file_name);
    if stem.is_empty() {
        return MatchKey::Unmatchable(
            "the file name has no identifier before its extension".into(),
        );
    }
    MatchKey::Lookup(MatchQuery::Identifier {
        value: stem.to_owned(),
        file_name: true,
    })
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
    use pictureday_contract::events::{FileRef, IndexEntry, MappedKey, Source};

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
            index: None,
            index_entry: None,
            unmatchable: None,
            options: Default::default(),
            chosen_person: None,
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
            MatchKey::Lookup(MatchQuery::Identifier {
                value: "ada@example.org".into(),
                file_name: false
            })
        );
        assert_eq!(
            match_key(&event("1234.jpg", true, None)?),
            MatchKey::Unmatchable("not listed in the mapping CSV".into())
        );
        assert_eq!(
            match_key(&event("sub/1234_Ngo_Lea.jpg", false, None)?),
            MatchKey::Lookup(MatchQuery::Identifier {
                value: "1234_Ngo_Lea".into(),
                file_name: true
            })
        );
        Ok(())
    }

    #[test]
    fn an_index_decides_when_there_is_no_mapping() -> anyhow::Result<()> {
        let mut listed = event("IMAGES/0001.JPG", false, None)?;
        listed.index = Some("MASTER.TXT".into());
        let entry = IndexEntry {
            index: "MASTER.TXT".into(),
            row: 4,
            last_name: "NGO".into(),
            first_name: "LEA".into(),
            ..IndexEntry::default()
        };
        listed.index_entry = Some(entry.clone());
        assert_eq!(
            match_key(&listed),
            MatchKey::Lookup(MatchQuery::Name(entry))
        );
        listed.index_entry = None;
        assert_eq!(
            match_key(&listed),
            MatchKey::Unmatchable("not in the index (MASTER.TXT)".into())
        );
        listed.unmatchable = Some("rows 4 and 9 both name it".into());
        assert_eq!(
            match_key(&listed),
            MatchKey::Unmatchable("rows 4 and 9 both name it".into())
        );
        Ok(())
    }

    #[test]
    fn a_chosen_person_decides_whatever_the_name_says() -> anyhow::Result<()> {
        let mut chosen = event("1234.jpg", true, Some("ada@example.org"))?;
        chosen.chosen_person = Some("p-1".into());
        assert_eq!(
            match_key(&chosen),
            MatchKey::Lookup(MatchQuery::Person {
                person_id: "p-1".into()
            })
        );
        Ok(())
    }
}
