//! How identifiers, names and grades are compared: the forms a vendor's file and the roster
//! must share for a match. Every function here is total: any text gives an answer.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// `ab123` for `AB123`.
pub fn folded(id: &str) -> String {
    id.to_lowercase()
}

/// A digit-only id without its leading zeros (`004521` → `4521`, `000` → `0`); `None` for ids
/// with anything but ASCII digits, which keep their zeros.
pub fn unpadded(id: &str) -> Option<&str> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = id.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0" } else { trimmed })
}

/// Letters that do not decompose into a base letter and a mark.
fn transliterated(c: char) -> Option<&'static str> {
    Some(match c {
        'ø' => "o",
        'æ' => "ae",
        'œ' => "oe",
        'ß' => "ss",
        'ł' => "l",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ı' => "i",
        _ => return None,
    })
}

/// A name as it is compared: lower-case, accents and every character but letters and digits
/// dropped, so `O'Brien`, `OBrien` and `o brien` agree, as do `José` and `JOSE`, `Mary-Jane` and
/// `MaryJane`.
pub fn name_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for c in name.nfd().flat_map(char::to_lowercase) {
        if is_combining_mark(c) {
            continue;
        }
        if let Some(plain) = transliterated(c) {
            key.push_str(plain);
        } else if c.is_alphanumeric() {
            key.push(c);
        }
    }
    key
}

/// The words of a name, each as a `name_key`: hyphens and spaces separate words, apostrophes
/// do not (`O'Brien` is one word).
pub fn name_words(name: &str) -> Vec<String> {
    name.split(|c: char| c.is_whitespace() || c == '-' || c == '_' || c == ',' || c == '.')
        .map(name_key)
        .filter(|w| !w.is_empty())
        .collect()
}

/// A grade as a school means it: `05`, `5`, `5th` and `Grade 5` are grade 5; `K`, `KG`, `0`,
/// `00` and `Kindergarten` are kindergarten. The table is in docs/matching.md.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grade {
    PreKindergarten,
    TransitionalKindergarten,
    Kindergarten,
    Numbered(u8),
    Ungraded,
    PostGraduate,
    /// Anything else, compared by its `name_key`.
    Other(String),
}

impl Grade {
    pub fn parse(text: &str) -> Option<Grade> {
        let key = name_key(text);
        let key = key
            .strip_prefix("grade")
            .or_else(|| key.strip_prefix("gr"))
            .filter(|rest| !rest.is_empty())
            .unwrap_or(&key);
        if key.is_empty() {
            return None;
        }
        Some(match key {
            "pk" | "prek" | "prekindergarten" | "ps" | "preschool" | "p" => Grade::PreKindergarten,
            "tk" | "transitionalkindergarten" => Grade::TransitionalKindergarten,
            "k" | "kg" | "kn" | "kindergarten" => Grade::Kindergarten,
            "ug" | "ungraded" => Grade::Ungraded,
            "pg" | "postgraduate" => Grade::PostGraduate,
            _ => {
                let digits = ["st", "nd", "rd", "th"]
                    .iter()
                    .find_map(|suffix| key.strip_suffix(suffix))
                    .unwrap_or(key);
                match unpadded(digits).and_then(|d| d.parse::<u8>().ok()) {
                    Some(0) => Grade::Kindergarten,
                    Some(n) if n <= 13 => Grade::Numbered(n),
                    _ => Grade::Other(key.to_owned()),
                }
            }
        })
    }

    /// As a person reads it in a reason.
    pub fn describe(&self) -> String {
        match self {
            Grade::PreKindergarten => "pre-kindergarten".into(),
            Grade::TransitionalKindergarten => "transitional kindergarten".into(),
            Grade::Kindergarten => "kindergarten".into(),
            Grade::Numbered(n) => format!("grade {n}"),
            Grade::Ungraded => "ungraded".into(),
            Grade::PostGraduate => "post-graduate".into(),
            Grade::Other(text) => format!("grade {text}"),
        }
    }
}

/// Words of a teacher's name that identify them: titles and initials left out, so the index's
/// `RUIZ` agrees with the roster's `Ms. Ruiz`.
pub fn teacher_words(teacher: &str) -> Vec<String> {
    const TITLES: [&str; 7] = ["mr", "mrs", "ms", "miss", "mx", "dr", "prof"];
    name_words(teacher)
        .into_iter()
        .filter(|w| w.chars().count() > 1 && !TITLES.contains(&w.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fold_and_unpad() {
        assert_eq!(folded("AB123"), "ab123");
        assert_eq!(unpadded("004521"), Some("4521"));
        assert_eq!(unpadded("0007788"), Some("7788"));
        assert_eq!(unpadded("000"), Some("0"));
        assert_eq!(unpadded("7788"), Some("7788"));
        assert_eq!(unpadded("0A12"), None);
        assert_eq!(unpadded("٣٣"), None, "only ASCII digits are numbers here");
        assert_eq!(unpadded(""), None);
    }

    #[test]
    fn names_ignore_case_accents_and_punctuation() {
        assert_eq!(name_key("O'Brien"), "obrien");
        assert_eq!(name_key("OBRIEN"), "obrien");
        assert_eq!(name_key("José"), "jose");
        assert_eq!(name_key("JOSE\u{301}"), "jose");
        assert_eq!(name_key("Mary-Jane"), "maryjane");
        assert_eq!(name_key("De La Cruz"), "delacruz");
        assert_eq!(name_key("Søren Æbelø"), "sorenaebelo");
        assert_eq!(name_key("Straße"), "strasse");
        assert_eq!(name_words("Mary-Jane  O'Brien"), ["mary", "jane", "obrien"]);
        assert_eq!(name_key("--"), "");
    }

    #[test]
    fn grades_compare_as_a_school_means_them() {
        for (text, grade) in [
            ("05", Grade::Numbered(5)),
            ("5", Grade::Numbered(5)),
            ("5th", Grade::Numbered(5)),
            ("Grade 5", Grade::Numbered(5)),
            ("GR05", Grade::Numbered(5)),
            ("12", Grade::Numbered(12)),
            ("K", Grade::Kindergarten),
            ("KG", Grade::Kindergarten),
            ("0", Grade::Kindergarten),
            ("00", Grade::Kindergarten),
            ("Kindergarten", Grade::Kindergarten),
            ("PK", Grade::PreKindergarten),
            ("Pre-K", Grade::PreKindergarten),
            ("TK", Grade::TransitionalKindergarten),
            ("UG", Grade::Ungraded),
            ("Adult", Grade::Other("adult".into())),
            ("99", Grade::Other("99".into())),
        ] {
            assert_eq!(Grade::parse(text), Some(grade), "{text}");
        }
        assert_eq!(Grade::parse("  "), None);
        assert_eq!(Grade::parse("Grade"), Some(Grade::Other("grade".into())));
    }

    #[test]
    fn teachers_are_compared_without_titles() {
        assert_eq!(teacher_words("Ms. Ruiz"), ["ruiz"]);
        assert_eq!(teacher_words("RUIZ, A"), ["ruiz"]);
        assert_eq!(teacher_words("Dr Ana Ruiz-Lopez"), ["ana", "ruiz", "lopez"]);
    }
}
