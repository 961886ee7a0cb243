//! Photographers' PSPA packages: a folder of images with a tab-delimited index (`INDEX.TXT`, or
//! `MASTER.TXT` when retakes are included) saying who is in each image, by name, grade and
//! homeroom rather than by id. This module reads those indexes, however a vendor's export varies,
//! and decides which row describes which image of an upload. It is pure: bytes in, rows and
//! warnings out; nothing here fails, a row that cannot be used becomes a warning.

use crate::warnings::bounded;
use std::borrow::Cow;
use std::collections::HashMap;

use pictureday_contract::events::IndexEntry;
use pictureday_platform::text::decode_spreadsheet_text;

use crate::mapping::{self, Mapping, base_name};

/// Which kind of photographer's file a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// `INDEX.TXT`: the PSPA index of the images as first delivered.
    Index,
    /// `MASTER.TXT`: the PSPA index including retakes; preferred over `INDEX.TXT`.
    Master,
    /// `idlink.txt` (Lifetouch): `"barcode","file.jpg"` rows, a mapping by another name.
    IdLink,
}

/// Recognises an index by its base name, in any case and at any depth, since vendors' zips put
/// it anywhere (`CD1/MASTER.TXT`, `Delivery\index.txt`).
pub fn index_kind(path: &str) -> Option<IndexKind> {
    let base = base_name(path);
    if base.eq_ignore_ascii_case("INDEX.TXT") {
        Some(IndexKind::Index)
    } else if base.eq_ignore_ascii_case("MASTER.TXT") {
        Some(IndexKind::Master)
    } else if base.eq_ignore_ascii_case("IDLINK.TXT") {
        Some(IndexKind::IdLink)
    } else {
        None
    }
}

/// Whether a path is a `.txt` file (indexes included: ask `index_kind` first). Packages carry
/// read-me and order files beside the images; they are not photos and must not be sent to be
/// decoded as one.
pub fn is_text_file(path: &str) -> bool {
    base_name(path)
        .rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && ext.eq_ignore_ascii_case("txt"))
}

/// Reads a Lifetouch `idlink.txt`: it is a mapping (`"barcode","file.jpg"`, no header) by another
/// name, so it is read exactly as a mapping CSV is.
pub fn parse_idlink(name: &str, data: &[u8]) -> Mapping {
    mapping::parse(name, data)
}

/// One usable row of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    /// Counted from 1 as an editor shows it (a header row is row 1).
    pub row: u32,
    /// The image folder, as written (relative to the index's folder).
    pub folder: Option<String>,
    /// The image file name, as written.
    pub image: String,
    pub entry: IndexEntry,
}

/// An index as read: its usable rows and, for the job's warnings, the rows that were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedIndex {
    pub rows: Vec<IndexRow>,
    pub warnings: Vec<String>,
}

/// The columns a PSPA index can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Volume,
    Folder,
    Image,
    Grade,
    Last,
    First,
    Homeroom,
    Period,
    Teacher,
    Track,
    Department,
    Title,
    ImageSize,
}

/// The PSPA standard's 13 fields, in order. The common 7-column export is its first 7.
const STANDARD: [Field; 13] = [
    Field::Volume,
    Field::Folder,
    Field::Image,
    Field::Grade,
    Field::Last,
    Field::First,
    Field::Homeroom,
    Field::Period,
    Field::Teacher,
    Field::Track,
    Field::Department,
    Field::Title,
    Field::ImageSize,
];

/// The common 8-column export, which puts the teacher before the homeroom.
const EIGHT_COLUMNS: [Field; 8] = [
    Field::Volume,
    Field::Folder,
    Field::Image,
    Field::Grade,
    Field::Last,
    Field::First,
    Field::Teacher,
    Field::Homeroom,
];

impl Field {
    /// The field a header cell names. Vendors spell headers freely (`Last Name`, `LastName`,
    /// `LAST_NAME`, `Last`), so case, spaces and punctuation are ignored.
    fn from_header(cell: &str) -> Option<Field> {
        let key: String = cell
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        Some(match key.as_str() {
            "volume" | "vol" | "volumename" => Field::Volume,
            "imagefolder" | "folder" | "foldername" | "imagedirectory" | "directory" => {
                Field::Folder
            }
            "imagefilename" | "imagename" | "image" | "imagefile" | "filename" | "file"
            | "photo" | "photoname" | "photofilename" => Field::Image,
            "grade" | "gradelevel" | "gr" => Field::Grade,
            "lastname" | "last" | "surname" | "familyname" => Field::Last,
            "firstname" | "first" | "givenname" => Field::First,
            "homeroom" | "room" | "homeroomnumber" => Field::Homeroom,
            "period" => Field::Period,
            "teacher" | "teachername" | "homeroomteacher" => Field::Teacher,
            "track" => Field::Track,
            "department" | "dept" => Field::Department,
            "title" | "jobtitle" => Field::Title,
            "imagesize" | "size" => Field::ImageSize,
            _ => return None,
        })
    }
}

/// Which column holds which field.
#[derive(Debug)]
struct Layout {
    columns: Vec<Option<Field>>,
}

impl Layout {
    fn positional(fields: &[Field]) -> Layout {
        Layout {
            columns: fields.iter().copied().map(Some).collect(),
        }
    }

    /// A header names at least two known columns; one could be a coincidence (a teacher
    /// called Grade), two in one row are not. The first column of a name wins.
    fn from_header(cells: &[Option<String>]) -> Option<Layout> {
        let mut columns: Vec<Option<Field>> = Vec::with_capacity(cells.len());
        for cell in cells {
            let field = cell.as_deref().and_then(Field::from_header);
            columns.push(field.filter(|f| !columns.contains(&Some(*f))));
        }
        (columns.iter().flatten().count() >= 2).then_some(Layout { columns })
    }

    /// Without a header, the layout follows the commonest column count: 8 is the variant with
    /// the teacher before the homeroom; anything else is read as the standard's first columns.
    /// The commonest rather than the first row's, so a short or ragged row does not decide.
    fn from_widths(lines: &[Line]) -> Layout {
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for line in lines {
            *counts.entry(line.cells.len()).or_default() += 1;
        }
        let commonest = counts
            .into_iter()
            .max_by_key(|&(width, count)| (count, width))
            .map(|(width, _)| width);
        if commonest == Some(EIGHT_COLUMNS.len()) {
            Layout::positional(&EIGHT_COLUMNS)
        } else {
            Layout::positional(&STANDARD)
        }
    }

    fn has(&self, field: Field) -> bool {
        self.columns.contains(&Some(field))
    }

    fn get(&self, cells: &[Option<String>], field: Field) -> Option<String> {
        let column = self.columns.iter().position(|c| *c == Some(field))?;
        cells.get(column).cloned().flatten()
    }
}

/// One non-blank line of an index: its editor row and its cells, trimmed (empty → `None`).
#[derive(Debug)]
struct Line {
    row: u32,
    cells: Vec<Option<String>>,
}

/// Reads a PSPA `INDEX.TXT` or `MASTER.TXT`; `name` is its path in the upload, for the entries
/// and the warnings. Never fails: what cannot be read is a warning.
pub fn parse_index(name: &str, data: &[u8]) -> ParsedIndex {
    let mut parsed = ParsedIndex::default();
    let text = without_byte_order_mark(data);
    let mut lines = split_lines(&text);
    let Some(first) = lines.first() else {
        return parsed;
    };
    let layout = match Layout::from_header(&first.cells) {
        Some(layout) => {
            lines.remove(0);
            if !layout.has(Field::Image) || !(layout.has(Field::Last) || layout.has(Field::First)) {
                parsed.warnings.push(format!(
                    "{name}: the header row has no image file name or no name column; the index was not read"
                ));
                return parsed;
            }
            layout
        }
        None => Layout::from_widths(&lines),
    };
    for line in &lines {
        match read_row(name, &layout, line) {
            Ok(row) => parsed.rows.push(row),
            Err(warning) => parsed.warnings.push(warning),
        }
    }
    parsed
}

/// One row of the index, or why it was skipped.
fn read_row(name: &str, layout: &Layout, line: &Line) -> Result<IndexRow, String> {
    let get = |field| layout.get(&line.cells, field);
    let row = line.row;
    let Some(image) = get(Field::Image) else {
        return Err(format!("{name} row {row}: no image file name; skipped"));
    };
    let (last_name, first_name) = (get(Field::Last), get(Field::First));
    if last_name.is_none() && first_name.is_none() {
        return Err(format!("{name} row {row}: no last or first name; skipped"));
    }
    Ok(IndexRow {
        row,
        folder: get(Field::Folder),
        image,
        entry: IndexEntry {
            index: name.to_owned(),
            row,
            last_name: last_name.unwrap_or_default(),
            first_name: first_name.unwrap_or_default(),
            grade: get(Field::Grade),
            homeroom: get(Field::Homeroom),
            teacher: get(Field::Teacher),
            title: get(Field::Title),
            department: get(Field::Department),
        },
    })
}

/// Drops a UTF-8 byte order mark, and turns UTF-16 (Excel's "Unicode Text" export, which starts
/// with its mark) into UTF-8, so the rest reads bytes as UTF-8 or Windows-1252.
fn without_byte_order_mark(data: &[u8]) -> Cow<'_, [u8]> {
    if let Some(rest) = data.strip_prefix(b"\xff\xfe") {
        Cow::Owned(from_utf16(rest, u16::from_le_bytes))
    } else if let Some(rest) = data.strip_prefix(b"\xfe\xff") {
        Cow::Owned(from_utf16(rest, u16::from_be_bytes))
    } else {
        Cow::Borrowed(data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data))
    }
}

fn from_utf16(data: &[u8], unit: fn([u8; 2]) -> u16) -> Vec<u8> {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .filter_map(|pair| <[u8; 2]>::try_from(pair).ok())
        .map(unit)
        .collect();
    String::from_utf16_lossy(&units).into_bytes()
}

/// Splits the index into its non-blank lines, each split into cells by the delimiter its first
/// line uses. Lines end in LF or CRLF (or CR alone, in files from old Macs).
fn split_lines(text: &[u8]) -> Vec<Line> {
    let end = if text.contains(&b'\n') { b'\n' } else { b'\r' };
    let first_line = text
        .split(|&b| b == end)
        .find(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .unwrap_or_default();
    let delimiter = sniff_delimiter(first_line);
    let mut lines = Vec::new();
    for (n, raw) in text.split(|&b| b == end).enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let cells: Vec<Option<String>> = split_cells(raw, delimiter)
            .iter()
            .map(|cell| clean(cell))
            .collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let row = u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1);
        lines.push(Line { row, cells });
    }
    lines
}

/// Tab, as the standard says, unless the first line has no tab and has a comma: some vendors
/// export CSV under the same name.
fn sniff_delimiter(first_line: &[u8]) -> u8 {
    if !first_line.contains(&b'\t') && first_line.contains(&b',') {
        b','
    } else {
        b'\t'
    }
}

/// Splits one line into cells. A cell that starts with `"` is quoted up to the next lone `"`
/// (`""` inside is a quote), as spreadsheets write CSV; a quote elsewhere is kept as written
/// (`ROBERT "BOB"`). Works on bytes: the delimiter and quote are ASCII, so this is right for
/// UTF-8 and Windows-1252 alike, and decoding is left to each cell.
fn split_cells(line: &[u8], delimiter: u8) -> Vec<Vec<u8>> {
    let mut cells = Vec::new();
    let mut cell = Vec::new();
    let mut quoted = false;
    let mut bytes = line.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if quoted {
            if b != b'"' {
                cell.push(b);
            } else if bytes.next_if_eq(&b'"').is_some() {
                cell.push(b'"');
            } else {
                quoted = false;
            }
        } else if b == delimiter {
            cells.push(std::mem::take(&mut cell));
        } else if b == b'"' && cell.iter().all(u8::is_ascii_whitespace) {
            cell.clear();
            quoted = true;
        } else {
            cell.push(b);
        }
    }
    cells.push(cell);
    cells
}

/// A cell's text, decoded as UTF-8 or else Windows-1252 and trimmed of spaces and control
/// characters (stray NULs, DOS end-of-file marks); `None` when nothing is left.
fn clean(cell: &[u8]) -> Option<String> {
    let text = decode_spreadsheet_text(cell);
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// What the upload's indexes say about each of its images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Per image (same order as `images`).
    pub files: Vec<Assigned>,
    /// The index (or indexes, joined with ", ") used, for messages: "CD1/MASTER.TXT".
    pub index_name: String,
    /// Job warnings: ignored indexes, skipped rows, rows naming images not in the upload or
    /// several of them; each kind at most `warnings::NAMED_WARNINGS` lines and one line counting the rest.
    pub warnings: Vec<String>,
}

/// What an index says about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    /// The row that describes the person in it.
    Listed(IndexEntry),
    /// No row names it.
    NotListed,
    /// Rows name it for different people; which one it shows cannot be told.
    Conflict(String),
}

/// An index the assignment uses.
struct Source<'a> {
    name: &'a str,
    data: &'a [u8],
    /// Its folder, normalised (`cd1`; empty at the top).
    dir: String,
}

impl Source<'_> {
    /// How deep its folder is: a deeper index is nearer its images and wins over one above it.
    fn depth(&self) -> usize {
        if self.dir.is_empty() {
            0
        } else {
            self.dir.split('/').count()
        }
    }
}

/// One row's claim that an image shows a person.
struct Claim {
    /// The index it comes from, as (depth, position among the sources).
    source: (usize, usize),
    /// Last and first name reduced to letters and digits, upper-case: who, for comparison.
    person: String,
    /// Last and first name as written, for messages.
    shown: String,
    entry: IndexEntry,
}

/// Decides which index row describes each image. An index applies to the images in its folder
/// and below, and a deeper index wins over one above it for the images it names; in one folder
/// `MASTER.TXT` (which includes retakes) is used and `INDEX.TXT` ignored.
pub fn assign(indexes: &[(String, Vec<u8>)], images: &[&str]) -> Assignment {
    let mut warnings = Vec::new();
    let sources = choose_sources(indexes, &mut warnings);
    let catalog = Catalog::new(images);
    let mut claims: Vec<Vec<Claim>> = images.iter().map(|_| Vec::new()).collect();
    let (mut skipped, mut missing, mut several) = (Vec::new(), Vec::new(), Vec::new());
    for (position, source) in sources.iter().enumerate() {
        let parsed = parse_index(source.name, source.data);
        skipped.extend(parsed.warnings);
        for row in parsed.rows {
            let found = catalog.resolve(&source.dir, row.folder.as_deref(), &row.image);
            let shown = shown_name(&row.entry);
            let written = written_path(&row);
            match found.as_slice() {
                [] => missing.push(format!(
                    "{} row {} names {written} ({shown}), which is not in the upload",
                    source.name, row.row
                )),
                [image] => {
                    if let Some(list) = claims.get_mut(*image) {
                        list.push(Claim {
                            source: (source.depth(), position),
                            person: person_key(&row.entry),
                            shown,
                            entry: row.entry,
                        });
                    }
                }
                _ => several.push(format!(
                    "{} row {} names {written} ({shown}), which could be {}; not assigned",
                    source.name,
                    row.row,
                    listed_with(&catalog.names(&found), "or")
                )),
            }
        }
    }
    warnings.extend(bounded(skipped, "index rows were skipped"));
    warnings.extend(bounded(missing, "index rows name images not in the upload"));
    warnings.extend(bounded(
        several,
        "index rows name an image several files of the upload share",
    ));
    let files = claims
        .into_iter()
        .zip(images)
        .map(|(claims, image)| decide(claims, image))
        .collect();
    let names: Vec<&str> = sources.iter().map(|s| s.name).collect();
    Assignment {
        files,
        index_name: names.join(", "),
        warnings,
    }
}

/// One index per folder: `MASTER.TXT` over `INDEX.TXT` (it includes the retakes), else the
/// first given. The others in that folder are ignored, each with a warning.
fn choose_sources<'a>(
    indexes: &'a [(String, Vec<u8>)],
    warnings: &mut Vec<String>,
) -> Vec<Source<'a>> {
    let rank = |name: &str| match index_kind(name) {
        Some(IndexKind::Master) => 0,
        Some(IndexKind::Index) => 1,
        _ => 2,
    };
    let mut best: HashMap<String, usize> = HashMap::new();
    for (i, (name, _)) in indexes.iter().enumerate() {
        let dir = parent(&normalise(name)).to_owned();
        let current = best.get(&dir).and_then(|&b| indexes.get(b));
        if current.is_none_or(|(chosen, _)| rank(name) < rank(chosen)) {
            best.insert(dir, i);
        }
    }
    let mut sources = Vec::new();
    for (i, (name, data)) in indexes.iter().enumerate() {
        let dir = parent(&normalise(name)).to_owned();
        let chosen = best.get(&dir).copied();
        match chosen.and_then(|b| indexes.get(b)) {
            Some((other, _)) if chosen != Some(i) => {
                let why = if rank(other) == 0 && rank(name) == 1 {
                    "includes retakes and is used instead"
                } else {
                    "is used instead"
                };
                warnings.push(format!(
                    "{name} is ignored: {other} in the same folder {why}"
                ));
            }
            _ => sources.push(Source { name, data, dir }),
        }
    }
    sources
}

/// The images of the upload, found by normalised path and by base name.
struct Catalog<'a> {
    images: &'a [&'a str],
    paths: Vec<String>,
    by_path: HashMap<String, Vec<usize>>,
    by_base: HashMap<String, Vec<usize>>,
}

impl<'a> Catalog<'a> {
    fn new(images: &'a [&'a str]) -> Catalog<'a> {
        let paths: Vec<String> = images.iter().map(|p| normalise(p)).collect();
        let (mut by_path, mut by_base) = (HashMap::new(), HashMap::new());
        for (i, path) in paths.iter().enumerate() {
            by_path.entry(path.clone()).or_insert_with(Vec::new).push(i);
            by_base
                .entry(base_name(path).to_owned())
                .or_insert_with(Vec::new)
                .push(i);
        }
        Catalog {
            images,
            paths,
            by_path,
            by_base,
        }
    }

    /// The images a row names: `{dir}/{folder}/{image}`, else `{dir}/{image}`, else the images
    /// under `dir` with that base name (a folder written as the photographer's drive, `D:\CD1`,
    /// does not match the upload's, but the file name still does). Several means the row cannot
    /// say which.
    fn resolve(&self, dir: &str, folder: Option<&str>, image: &str) -> Vec<usize> {
        let image = normalise(image);
        if image.is_empty() {
            return Vec::new();
        }
        let candidates = folder
            .map(|folder| join(dir, &join(&normalise(folder), &image)))
            .into_iter()
            .chain([join(dir, &image)]);
        for candidate in candidates {
            if let Some(found) = self.by_path.get(&candidate) {
                return found.clone();
            }
        }
        let same_base = self.by_base.get(base_name(&image));
        same_base
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| self.paths.get(i).is_some_and(|p| is_under(dir, p)))
            .collect()
    }

    fn names(&self, found: &[usize]) -> Vec<String> {
        found
            .iter()
            .filter_map(|&i| self.images.get(i))
            .map(|p| (*p).to_owned())
            .collect()
    }
}

/// The claims of the deepest index that names the image decide it: the later row for one person,
/// a conflict for several.
fn decide(claims: Vec<Claim>, image: &str) -> Assigned {
    let Some(nearest) = claims.iter().map(|c| c.source).max() else {
        return Assigned::NotListed;
    };
    let mut by_person: HashMap<String, Claim> = HashMap::new();
    for claim in claims.into_iter().filter(|c| c.source == nearest) {
        by_person.insert(claim.person.clone(), claim);
    }
    let mut latest: Vec<Claim> = by_person.into_values().collect();
    latest.sort_by_key(|c| c.entry.row);
    match latest.as_slice() {
        [] => Assigned::NotListed,
        [one] => Assigned::Listed(one.entry.clone()),
        [first, ..] => Assigned::Conflict(conflict(&latest, &first.entry.index, image)),
    }
}

/// `MASTER.TXT rows 4 and 9 both name IMAGES/0001.JPG, for NGO LEA and SMITH JOHN`.
fn conflict(claims: &[Claim], index: &str, image: &str) -> String {
    let rows: Vec<String> = claims.iter().map(|c| c.entry.row.to_string()).collect();
    let people: Vec<String> = claims.iter().map(|c| c.shown.clone()).collect();
    let both = if claims.len() == 2 { "both" } else { "all" };
    format!(
        "{index} rows {} {both} name {image}, for {}",
        listed_with(&rows, "and"),
        listed_with(&people, "and")
    )
}

/// Items named in one message at most; a message names a handful, not thousands.
const NAMED_IN_MESSAGE: usize = 5;

/// `a and b`, `a, b and c`, `a, b, c, d, e and 7 more` (`word` is `and` or `or`).
fn listed_with(items: &[String], word: &str) -> String {
    let more = items.len().saturating_sub(NAMED_IN_MESSAGE);
    let shown = items.get(..NAMED_IN_MESSAGE).unwrap_or(items);
    if more > 0 {
        return format!("{} {word} {more} more", shown.join(", "));
    }
    match shown.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} {word} {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// `NGO LEA`: the name as the index writes it, last name first.
fn shown_name(entry: &IndexEntry) -> String {
    [entry.last_name.as_str(), entry.first_name.as_str()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Who a row names, for telling whether two rows are the same person: letters and digits only,
/// upper-case, so `O'Brien` and `OBRIEN` agree.
fn person_key(entry: &IndexEntry) -> String {
    let key = |name: &str| -> String {
        name.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_uppercase)
            .collect()
    };
    format!("{}|{}", key(&entry.last_name), key(&entry.first_name))
}

/// The row's image as written, with `/` between folder and file: `IMAGES/0042.JPG`.
fn written_path(row: &IndexRow) -> String {
    let path = match &row.folder {
        Some(folder) => format!("{}/{}", folder.trim_end_matches(['/', '\\']), row.image),
        None => row.image.clone(),
    };
    path.replace('\\', "/")
}

/// A path for comparison: `\` as `/`, no empty or `.` parts, lower-case. Zips from Windows and
/// indexes written on them disagree on all three.
fn normalise(path: &str) -> String {
    path.replace('\\', "/")
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
        .to_lowercase()
}

/// The folder of a normalised path; empty at the top.
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn join(dir: &str, rest: &str) -> String {
    match (dir.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => dir.to_owned(),
        _ => format!("{dir}/{rest}"),
    }
}

/// Whether a normalised path is in `dir` or below it.
fn is_under(dir: &str, path: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry of `index` with only the names set; tests fill in the rest.
    fn entry(index: &str, row: u32, last: &str, first: &str) -> IndexEntry {
        IndexEntry {
            index: index.into(),
            row,
            last_name: last.into(),
            first_name: first.into(),
            ..IndexEntry::default()
        }
    }

    fn listed(index: &str, row: u32, last: &str, first: &str) -> Assigned {
        Assigned::Listed(entry(index, row, last, first))
    }

    fn index(name: &str, text: &str) -> (String, Vec<u8>) {
        (name.to_owned(), text.as_bytes().to_vec())
    }

    #[test]
    fn indexes_are_recognised_by_base_name_in_any_case_at_any_depth() {
        assert_eq!(index_kind("INDEX.TXT"), Some(IndexKind::Index));
        assert_eq!(index_kind("cd1/sub/index.txt"), Some(IndexKind::Index));
        assert_eq!(index_kind("CD1\\Master.Txt"), Some(IndexKind::Master));
        assert_eq!(index_kind("delivery/idlink.txt"), Some(IndexKind::IdLink));
        assert_eq!(index_kind("IDLINK.TXT"), Some(IndexKind::IdLink));
        assert_eq!(index_kind("INDEX.TXT/0001.JPG"), None);
        assert_eq!(index_kind("MYINDEX.TXT"), None);
        assert_eq!(index_kind("INDEX.CSV"), None);
        assert_eq!(index_kind(""), None);
        assert!(is_text_file("CD1/README.TXT"));
        assert!(is_text_file("order.txt"));
        assert!(is_text_file("MASTER.TXT"));
        assert!(!is_text_file("0001.JPG"));
        assert!(!is_text_file("txt"));
        assert!(!is_text_file("folder.txt/0001.jpg"));
    }

    #[test]
    fn thirteen_tab_columns_without_header_crlf_and_windows_1252() {
        let data =
            b"V1\tIMAGES\t0001.JPG\t05\tNU\xd1EZ\tJOS\xc9\t101\t2\tMS RIVERA\tA\t\t\t2X3\r\n\
                     V1\tIMAGES\t0002.JPG\t\tHALE\tDANA\t\t\t\t\tSCIENCE\tTEACHER\t2X3\r\n";
        let parsed = parse_index("CD1/INDEX.TXT", data);
        assert_eq!(parsed.warnings, Vec::<String>::new());
        assert_eq!(
            parsed.rows,
            vec![
                IndexRow {
                    row: 1,
                    folder: Some("IMAGES".into()),
                    image: "0001.JPG".into(),
                    entry: IndexEntry {
                        grade: Some("05".into()),
                        homeroom: Some("101".into()),
                        teacher: Some("MS RIVERA".into()),
                        ..entry("CD1/INDEX.TXT", 1, "NUÑEZ", "JOSÉ")
                    },
                },
                IndexRow {
                    row: 2,
                    folder: Some("IMAGES".into()),
                    image: "0002.JPG".into(),
                    entry: IndexEntry {
                        title: Some("TEACHER".into()),
                        department: Some("SCIENCE".into()),
                        ..entry("CD1/INDEX.TXT", 2, "HALE", "DANA")
                    },
                },
            ]
        );
    }

    #[test]
    fn a_staff_row_has_no_grade_and_a_title_or_department() {
        let data = "V1\tSTAFF\tS001.JPG\t\tMORALES\tANA\t\t\t\t\tADMINISTRATION\tPRINCIPAL\t\n";
        let parsed = parse_index("INDEX.TXT", data.as_bytes());
        let [row] = parsed.rows.as_slice() else {
            panic!("one row expected: {parsed:?}");
        };
        assert_eq!(
            row.entry,
            IndexEntry {
                title: Some("PRINCIPAL".into()),
                department: Some("ADMINISTRATION".into()),
                ..entry("INDEX.TXT", 1, "MORALES", "ANA")
            }
        );
        assert!(row.entry.is_staff());
    }

    #[test]
    fn a_header_names_the_columns_and_is_row_1() {
        let data = "\u{feff}Volume\tImage Folder\tImage File Name\tGrade\tLast Name\tFirst Name\tHomeroom\tPeriod\tTeacher\tTrack\tDepartment\tTitle\tImage Size\n\
                    V1\tIMAGES\t0001.JPG\t3\tNgo\tLea\t12\t\tMr Park\t\t\t\t\n";
        let parsed = parse_index("MASTER.TXT", data.as_bytes());
        assert_eq!(parsed.warnings, Vec::<String>::new());
        assert_eq!(
            parsed.rows,
            vec![IndexRow {
                row: 2,
                folder: Some("IMAGES".into()),
                image: "0001.JPG".into(),
                entry: IndexEntry {
                    grade: Some("3".into()),
                    homeroom: Some("12".into()),
                    teacher: Some("Mr Park".into()),
                    ..entry("MASTER.TXT", 2, "Ngo", "Lea")
                },
            }]
        );
    }

    #[test]
    fn a_header_in_another_order_maps_by_name_not_position() {
        let data = "LastName\tFIRST\tImage Name\tHomeroom\tTeacher\tGrade\tFolder\n\
                    SMITH\tJOHN\t0007.JPG\t204\tMS LEE\t11\tPHOTOS\n";
        let parsed = parse_index("INDEX.TXT", data.as_bytes());
        assert_eq!(
            parsed.rows,
            vec![IndexRow {
                row: 2,
                folder: Some("PHOTOS".into()),
                image: "0007.JPG".into(),
                entry: IndexEntry {
                    grade: Some("11".into()),
                    homeroom: Some("204".into()),
                    teacher: Some("MS LEE".into()),
                    ..entry("INDEX.TXT", 2, "SMITH", "JOHN")
                },
            }]
        );
    }

    #[test]
    fn a_header_without_an_image_column_is_one_warning() {
        let parsed = parse_index("INDEX.TXT", b"Last Name\tFirst Name\nSMITH\tJOHN\n");
        assert_eq!(parsed.rows, vec![]);
        assert_eq!(
            parsed.warnings,
            vec![
                "INDEX.TXT: the header row has no image file name or no name column; the index was not read"
            ]
        );
    }

    #[test]
    fn comma_delimited_with_quotes() {
        let data = "\"Volume\",\"Folder\",\"Image\",\"Grade\",\"Last\",\"First\",\"Homeroom\"\r\n\
                    \"V1\",\"IMAGES\",\"0001.JPG\",\"K\",\"O\"\"BRIEN, JR\",\"SEAN\",\"B-2\"\r\n\
                    V1,IMAGES,0002.JPG,1,DOE,\"JANE \"\"JJ\"\"\",\r\n";
        let parsed = parse_index("INDEX.TXT", data.as_bytes());
        assert_eq!(parsed.warnings, Vec::<String>::new());
        assert_eq!(
            parsed.rows,
            vec![
                IndexRow {
                    row: 2,
                    folder: Some("IMAGES".into()),
                    image: "0001.JPG".into(),
                    entry: IndexEntry {
                        grade: Some("K".into()),
                        homeroom: Some("B-2".into()),
                        ..entry("INDEX.TXT", 2, "O\"BRIEN, JR", "SEAN")
                    },
                },
                IndexRow {
                    row: 3,
                    folder: Some("IMAGES".into()),
                    image: "0002.JPG".into(),
                    entry: IndexEntry {
                        grade: Some("1".into()),
                        ..entry("INDEX.TXT", 3, "DOE", "JANE \"JJ\"")
                    },
                },
            ]
        );
    }

    #[test]
    fn comma_delimited_without_header_reads_as_the_standard() {
        let parsed = parse_index("INDEX.TXT", b"V1,IMG,0001.JPG,9,LOPEZ,MIA,310\n");
        assert_eq!(
            parsed.rows,
            vec![IndexRow {
                row: 1,
                folder: Some("IMG".into()),
                image: "0001.JPG".into(),
                entry: IndexEntry {
                    grade: Some("9".into()),
                    homeroom: Some("310".into()),
                    ..entry("INDEX.TXT", 1, "LOPEZ", "MIA")
                },
            }]
        );
    }

    #[test]
    fn seven_columns_end_with_the_homeroom() {
        let data = "V1\tIMAGES\t0001.JPG\t02\tGARCIA\tLUIS\t105\nV1\tIMAGES\t0002.JPG\t02\tKIM\tSORA\t106\n";
        let parsed = parse_index("INDEX.TXT", data.as_bytes());
        assert_eq!(parsed.warnings, Vec::<String>::new());
        let entries: Vec<IndexEntry> = parsed.rows.into_iter().map(|r| r.entry).collect();
        assert_eq!(
            entries,
            vec![
                IndexEntry {
                    grade: Some("02".into()),
                    homeroom: Some("105".into()),
                    ..entry("INDEX.TXT", 1, "GARCIA", "LUIS")
                },
                IndexEntry {
                    grade: Some("02".into()),
                    homeroom: Some("106".into()),
                    ..entry("INDEX.TXT", 2, "KIM", "SORA")
                },
            ]
        );
    }

    #[test]
    fn eight_columns_put_the_teacher_before_the_homeroom() {
        // The second row lost its empty trailing cell; the commonest width still decides.
        let data = "V1\tIMAGES\t0001.JPG\t04\tPATEL\tRAJ\tMRS GREEN\t12\n\
                    V1\tIMAGES\t0002.JPG\t04\tCHEN\tWEI\tMR BROWN\t14\n\
                    V1\tIMAGES\t0003.JPG\t04\tROSS\tAMY\tMR BROWN\n";
        let parsed = parse_index("INDEX.TXT", data.as_bytes());
        let entries: Vec<IndexEntry> = parsed.rows.into_iter().map(|r| r.entry).collect();
        assert_eq!(
            entries,
            vec![
                IndexEntry {
                    grade: Some("04".into()),
                    teacher: Some("MRS GREEN".into()),
                    homeroom: Some("12".into()),
                    ..entry("INDEX.TXT", 1, "PATEL", "RAJ")
                },
                IndexEntry {
                    grade: Some("04".into()),
                    teacher: Some("MR BROWN".into()),
                    homeroom: Some("14".into()),
                    ..entry("INDEX.TXT", 2, "CHEN", "WEI")
                },
                IndexEntry {
                    grade: Some("04".into()),
                    teacher: Some("MR BROWN".into()),
                    ..entry("INDEX.TXT", 3, "ROSS", "AMY")
                },
            ]
        );
    }

    #[test]
    fn upper_case_names_are_kept_as_written() {
        let parsed = parse_index("INDEX.TXT", b"V1\tI\t1.JPG\t5\tMCDONALD\tMARY-KATE\t\n");
        let names: Vec<(&str, &str)> = parsed
            .rows
            .iter()
            .map(|r| (r.entry.last_name.as_str(), r.entry.first_name.as_str()))
            .collect();
        assert_eq!(names, vec![("MCDONALD", "MARY-KATE")]);
    }

    #[test]
    fn unusable_rows_are_skipped_with_a_warning_naming_the_row_and_field() {
        let data = "V1\tIMAGES\t0001.JPG\t5\tNGO\tLEA\t1\n\
                    \n\
                    V1\tIMAGES\t\t5\tSMITH\tJOHN\t1\n\
                    \t\t\t\t\t\t\n\
                    V1\tIMAGES\t0004.JPG\t5\t\t\t1\n\
                    V1\tIMAGES\t0005.JPG\t5\tCHER\t\t1\n";
        let parsed = parse_index("MASTER.TXT", data.as_bytes());
        assert_eq!(
            parsed.warnings,
            vec![
                "MASTER.TXT row 3: no image file name; skipped",
                "MASTER.TXT row 5: no last or first name; skipped",
            ]
        );
        let kept: Vec<(u32, &str, &str, &str)> = parsed
            .rows
            .iter()
            .map(|r| {
                let e = &r.entry;
                (
                    r.row,
                    r.image.as_str(),
                    e.last_name.as_str(),
                    e.first_name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            kept,
            vec![(1, "0001.JPG", "NGO", "LEA"), (6, "0005.JPG", "CHER", "")]
        );
    }

    #[test]
    fn utf16_and_lone_cr_files_are_read() {
        let mut utf16 = vec![0xff, 0xfe];
        for unit in "V1\tI\t1.JPG\t5\tPEÑA\tZOË\t9\r\n".encode_utf16() {
            utf16.extend(unit.to_le_bytes());
        }
        let parsed = parse_index("INDEX.TXT", &utf16);
        let names: Vec<(&str, &str)> = parsed
            .rows
            .iter()
            .map(|r| (r.entry.last_name.as_str(), r.entry.first_name.as_str()))
            .collect();
        assert_eq!(names, vec![("PEÑA", "ZOË")]);
        let parsed = parse_index(
            "INDEX.TXT",
            b"V\tI\t1.JPG\t5\tA\tB\t9\rV\tI\t2.JPG\t5\tC\tD\t9\r",
        );
        let rows: Vec<(u32, &str)> = parsed
            .rows
            .iter()
            .map(|r| (r.row, r.image.as_str()))
            .collect();
        assert_eq!(rows, vec![(1, "1.JPG"), (2, "2.JPG")]);
    }

    #[test]
    fn idlink_is_a_mapping() {
        let mapping = parse_idlink(
            "idlink.txt",
            b"\"123456\",\"IMG_0001.JPG\"\r\n\"123457\",\"IMG_0002.JPG\"\r\n",
        );
        assert_eq!(mapping.warnings, Vec::<String>::new());
        assert_eq!(
            mapping
                .key_for("CD1/IMG_0002.JPG")
                .map(|k| (k.value.as_str(), k.row)),
            Some(("123457", 2))
        );
    }

    #[test]
    fn rows_find_images_by_folder_and_file_ignoring_case_and_backslashes() {
        let indexes = [index(
            "CD1/INDEX.TXT",
            "V1\tIMAGES\\SUB\t0001.JPG\t5\tNGO\tLEA\t1\n\
             V1\tD:\\DELIVERY\t0002.JPG\t5\tSMITH\tJOHN\t1\n",
        )];
        let images = ["cd1/images/sub/0001.jpg", "CD1/0002.JPG", "CD1/0003.JPG"];
        let assignment = assign(&indexes, &images);
        assert_eq!(assignment.warnings, Vec::<String>::new());
        assert_eq!(assignment.index_name, "CD1/INDEX.TXT");
        assert_eq!(
            assignment.files,
            vec![
                Assigned::Listed(IndexEntry {
                    grade: Some("5".into()),
                    homeroom: Some("1".into()),
                    ..entry("CD1/INDEX.TXT", 1, "NGO", "LEA")
                }),
                Assigned::Listed(IndexEntry {
                    grade: Some("5".into()),
                    homeroom: Some("1".into()),
                    ..entry("CD1/INDEX.TXT", 2, "SMITH", "JOHN")
                }),
                Assigned::NotListed,
            ]
        );
    }

    #[test]
    fn a_base_name_found_once_below_the_index_is_used_and_several_are_a_warning() {
        let indexes = [index(
            "INDEX.TXT",
            "V1\tWRONG\t0003.JPG\t5\tNGO\tLEA\t1\nV1\tWRONG\t0004.JPG\t5\tSMITH\tJOHN\t1\n",
        )];
        let images = ["DEEP/NEST/0003.jpg", "A/0004.JPG", "B/0004.JPG"];
        let assignment = assign(&indexes, &images);
        assert_eq!(
            assignment.warnings,
            vec![
                "INDEX.TXT row 2 names WRONG/0004.JPG (SMITH JOHN), which could be A/0004.JPG or B/0004.JPG; not assigned"
            ]
        );
        assert_eq!(
            assignment.files,
            vec![
                Assigned::Listed(IndexEntry {
                    grade: Some("5".into()),
                    homeroom: Some("1".into()),
                    ..entry("INDEX.TXT", 1, "NGO", "LEA")
                }),
                Assigned::NotListed,
                Assigned::NotListed,
            ]
        );
    }

    #[test]
    fn master_wins_over_index_in_the_same_folder() {
        let indexes = [
            index("CD1/INDEX.TXT", "V\tI\t0001.JPG\t\tNGO\tLEA\t\n"),
            index(
                "cd1/master.txt",
                "V\tI\t0001.JPG\t\tNGUYEN\tLEE\t\nV\tI\t0002.JPG\t\tNGO\tLEA\t\n",
            ),
        ];
        let images = ["CD1/I/0001.JPG", "CD1/I/0002.JPG"];
        let assignment = assign(&indexes, &images);
        assert_eq!(assignment.index_name, "cd1/master.txt");
        assert_eq!(
            assignment.warnings,
            vec![
                "CD1/INDEX.TXT is ignored: cd1/master.txt in the same folder includes retakes and is used instead"
            ]
        );
        assert_eq!(
            assignment.files,
            vec![
                listed("cd1/master.txt", 1, "NGUYEN", "LEE"),
                listed("cd1/master.txt", 2, "NGO", "LEA"),
            ]
        );
    }

    #[test]
    fn an_index_in_a_subfolder_applies_only_below_it_and_wins_there() {
        let indexes = [
            index(
                "INDEX.TXT",
                "V\t\t0001.JPG\t\tROOT\tONE\t\nV\tCD2\t0005.JPG\t\tROOT\tFIVE\t\n",
            ),
            index(
                "CD2/INDEX.TXT",
                "V\t\t0001.JPG\t\tSUB\tONE\t\nV\t\t0005.JPG\t\tSUB\tFIVE\t\n",
            ),
        ];
        let images = ["0001.JPG", "CD2/0001.JPG", "CD2/0005.JPG", "CD3/0001.JPG"];
        let assignment = assign(&indexes, &images);
        assert_eq!(assignment.index_name, "INDEX.TXT, CD2/INDEX.TXT");
        assert_eq!(assignment.warnings, Vec::<String>::new());
        assert_eq!(
            assignment.files,
            vec![
                listed("INDEX.TXT", 1, "ROOT", "ONE"),
                listed("CD2/INDEX.TXT", 1, "SUB", "ONE"),
                listed("CD2/INDEX.TXT", 2, "SUB", "FIVE"),
                Assigned::NotListed,
            ]
        );
        // Alone, the subfolder's index names nothing outside it.
        let assignment = assign(&indexes[1..], &images);
        assert_eq!(
            assignment.files,
            vec![
                Assigned::NotListed,
                listed("CD2/INDEX.TXT", 1, "SUB", "ONE"),
                listed("CD2/INDEX.TXT", 2, "SUB", "FIVE"),
                Assigned::NotListed,
            ]
        );
    }

    #[test]
    fn an_absent_image_is_a_warning() {
        let mut text = String::new();
        for row in 1..=11 {
            text.push_str(&format!("V\tIMAGES\t{row:04}.JPG\t\tP{row}\tQ\t\n"));
        }
        text.push_str("V\tIMAGES\t0042.JPG\t\tNGO\tLEA\t\n");
        let images: Vec<String> = (1..=11).map(|n| format!("IMAGES/{n:04}.JPG")).collect();
        let images: Vec<&str> = images.iter().map(String::as_str).collect();
        let assignment = assign(&[index("MASTER.TXT", &text)], &images);
        assert_eq!(
            assignment.warnings,
            vec!["MASTER.TXT row 12 names IMAGES/0042.JPG (NGO LEA), which is not in the upload"]
        );
        assert_eq!(
            assignment.files.first(),
            Some(&listed("MASTER.TXT", 1, "P1", "Q"))
        );
    }

    #[test]
    fn rows_naming_one_image_for_different_people_conflict() {
        let text = "V\tIMAGES\t0000.JPG\t\tA\tB\t\n\
                    V\tIMAGES\t0002.JPG\t\tSAME\tONE\t\n\
                    V\tIMAGES\t0003.JPG\t\tX\tY\t\n\
                    V\tIMAGES\t0001.JPG\t\tNGO\tLEA\t\n\
                    V\tIMAGES\t0002.JPG\t\tSame\tOne\t\n\
                    V\tIMAGES\t0003.JPG\t\tZ\tY\t\n\
                    V\tIMAGES\t0003.JPG\t\tW\tY\t\n\
                    V\tIMAGES\t0003.JPG\t\tX\tY\t\n\
                    V\tIMAGES\t0001.JPG\t\tSMITH\tJOHN\t\n";
        let images = ["IMAGES/0001.JPG", "IMAGES/0002.JPG", "IMAGES/0003.JPG"];
        let assignment = assign(&[index("MASTER.TXT", text)], &images);
        assert_eq!(
            assignment.warnings,
            vec!["MASTER.TXT row 1 names IMAGES/0000.JPG (A B), which is not in the upload"]
        );
        assert_eq!(
            assignment.files,
            vec![
                Assigned::Conflict(
                    "MASTER.TXT rows 4 and 9 both name IMAGES/0001.JPG, for NGO LEA and SMITH JOHN"
                        .into()
                ),
                // The same person twice: the later row, silently.
                listed("MASTER.TXT", 5, "Same", "One"),
                Assigned::Conflict(
                    "MASTER.TXT rows 6, 7 and 8 all name IMAGES/0003.JPG, for Z Y, W Y and X Y"
                        .into()
                ),
            ]
        );
    }

    #[test]
    fn lists_in_messages_name_a_handful() {
        let items = |n: u32| -> Vec<String> { (1..=n).map(|i| i.to_string()).collect() };
        assert_eq!(listed_with(&items(0), "and"), "");
        assert_eq!(listed_with(&items(1), "and"), "1");
        assert_eq!(listed_with(&items(2), "or"), "1 or 2");
        assert_eq!(listed_with(&items(5), "and"), "1, 2, 3, 4 and 5");
        assert_eq!(listed_with(&items(7), "and"), "1, 2, 3, 4, 5 and 2 more");
    }

    #[test]
    fn warnings_are_bounded() {
        let mut text = String::new();
        for row in 1..=25 {
            text.push_str(&format!("V\tIMAGES\t{row:04}.JPG\t\tLAST{row}\tFIRST\t\n"));
        }
        for _ in 0..23 {
            text.push_str("V\tIMAGES\t\t\tNONAME\tFIRST\t\n");
        }
        let assignment = assign(&[index("MASTER.TXT", &text)], &["IMAGES/0001.JPG"]);
        let mut expected: Vec<String> = (26..=45)
            .map(|row| format!("MASTER.TXT row {row}: no image file name; skipped"))
            .collect();
        expected.push("and 3 more index rows were skipped".into());
        expected.extend((2..=21).map(|row| {
            format!(
                "MASTER.TXT row {row} names IMAGES/{row:04}.JPG (LAST{row} FIRST), which is not in the upload"
            )
        }));
        expected.push("and 4 more index rows name images not in the upload".into());
        assert_eq!(assignment.warnings, expected);
        assert_eq!(
            assignment.files,
            vec![listed("MASTER.TXT", 1, "LAST1", "FIRST")]
        );
    }

    #[test]
    fn no_index_means_nothing_is_listed() {
        let assignment = assign(&[], &["a.jpg"]);
        assert_eq!(
            assignment,
            Assignment {
                files: vec![Assigned::NotListed],
                index_name: String::new(),
                warnings: vec![],
            }
        );
    }

    /// A small deterministic generator, so the garbage is the same on every run.
    fn garbage(seed: u64, len: usize, alphabet: &[u8]) -> Vec<u8> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pick = usize::try_from(state >> 33).unwrap_or_default();
                alphabet
                    .get(pick % alphabet.len().max(1))
                    .copied()
                    .unwrap_or(0)
            })
            .collect()
    }

    #[test]
    fn garbage_empty_input_and_nul_bytes_never_panic() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let structural = b"\t,\"\r\n\0\xff\xfe\xef\xbb\xbf\\/.aIMAGE.JPGlast first";
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0; 4096],
            b"\xff\xfe".to_vec(),
            b"\xff\xfe\x41".to_vec(),
            b"\xfe\xff\x00".to_vec(),
            b"\xef\xbb\xbf".to_vec(),
            b"\"".to_vec(),
            b"\"\"\"\t\"\n,\",".to_vec(),
            b"\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t".to_vec(),
            b"\r\r\r\n\n\r".to_vec(),
            b"Last\tFirst\tImage\n\0\0\t\0\t\0\n".to_vec(),
            b"V\t\\\t\\\t\tA\tB\t\nV\t..\t/\t\tA\tB\t\n".to_vec(),
        ];
        for seed in 0..300 {
            let len = usize::try_from(seed * 7 % 700).unwrap_or_default();
            inputs.push(garbage(seed, len, &all_bytes));
            inputs.push(garbage(seed, len, structural));
        }
        let images = [
            "",
            "/",
            "\\",
            "..",
            "a/../b.jpg",
            "IMAGE.JPG",
            "x/IMAGE.JPG",
            "\0",
        ];
        for data in &inputs {
            let parsed = parse_index("INDEX.TXT", data);
            assert!(parsed.rows.iter().all(|r| !r.image.is_empty()));
            let _ = parse_idlink("idlink.txt", data);
            let indexes = [
                ("INDEX.TXT".to_owned(), data.clone()),
                ("x/MASTER.TXT".to_owned(), data.clone()),
                ("".to_owned(), data.clone()),
                ("x\\index.txt".to_owned(), data.clone()),
            ];
            let assignment = assign(&indexes, &images);
            assert_eq!(assignment.files.len(), images.len());
        }
    }
}
