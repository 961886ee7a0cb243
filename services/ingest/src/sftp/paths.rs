//! The folders an account sees, as Manage1to1 users know them: `/incoming/idphotos/` for photos
//! and `/incoming/data/` for roster CSVs, also at `/idphotos` and `/data`. Every path is
//! resolved against this small tree alone: `..` stops at `/` (the account's root is its
//! district), so no path names anything outside it.

/// Which drop folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Folder {
    Photos,
    Data,
}

/// What a client's path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Root,
    Incoming,
    Folder(Folder),
    File(Folder, String),
    /// Not in the tree: no such file or folder.
    Nowhere,
}

/// A path resolved: what it names and its normal form (for `realpath`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub place: Place,
    pub normal: String,
}

/// Resolves `raw` (absolute, or relative to `/`, the session's only working folder).
pub fn resolve(raw: &str) -> Resolved {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            // At the root `..` is the root: the chroot.
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let normal = format!("/{}", parts.join("/"));
    let folder = |name: &str| match name {
        "idphotos" => Some(Folder::Photos),
        "data" => Some(Folder::Data),
        _ => None,
    };
    let file = |folder: Folder, name: &str| {
        if is_file_name(name) {
            Place::File(folder, name.to_owned())
        } else {
            Place::Nowhere
        }
    };
    let place = match parts.as_slice() {
        [] => Place::Root,
        ["incoming"] => Place::Incoming,
        ["incoming", f] | [f] => folder(f).map_or(Place::Nowhere, Place::Folder),
        ["incoming", f, name] | [f, name] => folder(f).map_or(Place::Nowhere, |f| file(f, name)),
        _ => Place::Nowhere,
    };
    Resolved { place, normal }
}

/// A name a file may have in a drop folder: printable, no control characters, not too long.
fn is_file_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.chars().any(char::is_control)
}

/// Whether a name is a client's temporary name for a file still arriving (WinSCP's
/// `.filepart`, `.part`/`.tmp` and dot-files other clients use): such a file counts only once
/// renamed to its final name.
pub fn is_temporary(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".filepart")
        || lower.ends_with(".part")
        || lower.ends_with(".tmp")
        || lower.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_the_folders_resolve() {
        assert_eq!(resolve("/").place, Place::Root);
        assert_eq!(resolve(".").place, Place::Root);
        assert_eq!(resolve("/incoming").place, Place::Incoming);
        assert_eq!(
            resolve("/incoming/idphotos/").place,
            Place::Folder(Folder::Photos)
        );
        assert_eq!(resolve("idphotos").place, Place::Folder(Folder::Photos));
        assert_eq!(resolve("/data").place, Place::Folder(Folder::Data));
        assert_eq!(
            resolve("/incoming/idphotos/1234.jpg").place,
            Place::File(Folder::Photos, "1234.jpg".into())
        );
        assert_eq!(
            resolve("data/roster.csv").place,
            Place::File(Folder::Data, "roster.csv".into())
        );
    }

    #[test]
    fn no_path_leaves_the_tree() {
        assert_eq!(resolve("../..").normal, "/");
        assert_eq!(resolve("/../../etc/passwd").place, Place::Nowhere);
        assert_eq!(
            resolve("/incoming/idphotos/../../../other/idphotos/x.jpg").place,
            Place::Nowhere
        );
        assert_eq!(
            resolve("/idphotos/../../idphotos/x.jpg").place,
            Place::File(Folder::Photos, "x.jpg".into())
        );
        assert_eq!(resolve("/incoming/idphotos/a/b.jpg").place, Place::Nowhere);
        assert_eq!(resolve("/etc").place, Place::Nowhere);
    }

    #[test]
    fn temporary_names_are_told_apart() {
        assert!(is_temporary("1234.jpg.filepart"));
        assert!(is_temporary(".1234.jpg.abc"));
        assert!(!is_temporary("1234.jpg"));
    }
}
