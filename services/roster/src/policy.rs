//! Whether a photo becomes a person's photo under an import's replace policy, and the sentence a
//! person reads about it. Pure: the database side (`placement`) asks, then makes it so with one
//! conditional UPDATE whose condition says the same thing.

use chrono::{DateTime, Utc};
use pictureday_contract::events::ReplacePolicy;

/// What applying a photo does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It becomes the person's photo (replacing the current one, if any).
    Become,
    /// It is kept as a version: the person's current photo is a newer upload.
    Supersede,
    /// The replace policy leaves the person's photo as it is.
    Skip(Skip),
}

/// Why the replace policy leaves a person's photo alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// `missing_only`, and the person already had a photo before this import.
    HasPhoto,
    /// `existing_only`, and the person has no photo.
    NoPhoto,
}

/// The photo a person has now, as the sentences name it.
#[derive(Debug, Clone, Copy)]
pub struct CurrentPhoto<'a> {
    pub upload_rank: &'a str,
    pub file_name: &'a str,
    pub job_id: &'a str,
    pub stored_at: DateTime<Utc>,
}

/// The upload rank's prefix shared by every file of `job` (`<job>/<seq>`, see
/// `pictureday_contract::ids::upload_rank`).
pub fn job_rank_prefix(job_id: &str) -> String {
    format!("{job_id}/")
}

/// Decides for a photo of upload rank `rank` from job `job_id`, given the person's current photo's
/// rank. The newest upload wins whatever the policy; `missing_only` counts only photos from
/// before this import as "already has a photo", so two files of one person in the same import
/// still end with the newer one current.
pub fn decide(policy: ReplacePolicy, current: Option<&str>, job_id: &str, rank: &str) -> Decision {
    let Some(current) = current else {
        return match policy {
            ReplacePolicy::ExistingOnly => Decision::Skip(Skip::NoPhoto),
            ReplacePolicy::Always | ReplacePolicy::MissingOnly => Decision::Become,
        };
    };
    if policy == ReplacePolicy::MissingOnly && !current.starts_with(&job_rank_prefix(job_id)) {
        return Decision::Skip(Skip::HasPhoto);
    }
    if current < rank {
        Decision::Become
    } else {
        Decision::Supersede
    }
}

fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Why a photo was skipped, naming what the person keeps: "Ada Lovelace already has a photo (from
/// 1001.jpg, 2026-11-30); replace=missing_only keeps it".
pub fn skip_note(skip: Skip, name: &str, current: Option<&CurrentPhoto<'_>>) -> String {
    match (skip, current) {
        (Skip::HasPhoto, Some(current)) => format!(
            "{name} already has a photo (from {}, {}); replace=missing_only keeps it",
            current.file_name,
            date(current.stored_at)
        ),
        (Skip::HasPhoto, None) => {
            format!("{name} already has a photo; replace=missing_only keeps it")
        }
        (Skip::NoPhoto, _) => {
            format!("{name} has no photo yet; replace=existing_only only replaces existing photos")
        }
    }
}

/// What applying a previewed photo would do.
pub fn preview_note(decision: Decision, name: &str, current: Option<&CurrentPhoto<'_>>) -> String {
    match (decision, current) {
        (Decision::Become, None) => format!("would become {name}'s photo (none yet)"),
        (Decision::Become, Some(current)) => format!(
            "would replace the current photo from {} (job {}, {})",
            current.file_name,
            current.job_id,
            date(current.stored_at)
        ),
        (Decision::Supersede, Some(current)) => format!(
            "would be kept as an older version: the current photo, from {} (job {}, {}), is a newer upload",
            current.file_name,
            current.job_id,
            date(current.stored_at)
        ),
        (Decision::Supersede, None) => {
            "would be kept as an older version: a newer upload is the current photo".into()
        }
        (Decision::Skip(skip), current) => {
            format!("would be skipped: {}", skip_note(skip, name, current))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReplacePolicy::{Always, ExistingOnly, MissingOnly};

    const OLD: &str = "job-a/0000000003";
    const SAME_JOB_EARLIER: &str = "job-b/0000000001";
    const NEW: &str = "job-b/0000000002";
    const NEWER: &str = "job-c/0000000000";

    #[test]
    fn always_lets_the_newest_upload_win() {
        assert_eq!(decide(Always, None, "job-b", NEW), Decision::Become);
        assert_eq!(decide(Always, Some(OLD), "job-b", NEW), Decision::Become);
        assert_eq!(
            decide(Always, Some(NEWER), "job-b", NEW),
            Decision::Supersede
        );
    }

    #[test]
    fn missing_only_keeps_a_photo_from_before_the_import() {
        assert_eq!(decide(MissingOnly, None, "job-b", NEW), Decision::Become);
        assert_eq!(
            decide(MissingOnly, Some(OLD), "job-b", NEW),
            Decision::Skip(Skip::HasPhoto)
        );
        assert_eq!(
            decide(MissingOnly, Some(NEWER), "job-b", NEW),
            Decision::Skip(Skip::HasPhoto)
        );
        // Two files of one person in the same import: the newer one wins.
        assert_eq!(
            decide(MissingOnly, Some(SAME_JOB_EARLIER), "job-b", NEW),
            Decision::Become
        );
        assert_eq!(
            decide(MissingOnly, Some("job-b/0000000009"), "job-b", NEW),
            Decision::Supersede
        );
        // A job id that merely starts like this one's is another job.
        assert_eq!(
            decide(MissingOnly, Some("job-bb/0000000000"), "job-b", NEW),
            Decision::Skip(Skip::HasPhoto)
        );
    }

    #[test]
    fn existing_only_replaces_only_existing_photos() {
        assert_eq!(
            decide(ExistingOnly, None, "job-b", NEW),
            Decision::Skip(Skip::NoPhoto)
        );
        assert_eq!(
            decide(ExistingOnly, Some(OLD), "job-b", NEW),
            Decision::Become
        );
        assert_eq!(
            decide(ExistingOnly, Some(NEWER), "job-b", NEW),
            Decision::Supersede
        );
    }

    fn current() -> CurrentPhoto<'static> {
        CurrentPhoto {
            upload_rank: OLD,
            file_name: "1001.jpg",
            job_id: "job-a",
            stored_at: DateTime::parse_from_rfc3339("2026-11-30T15:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn notes_say_what_a_person_can_act_on() {
        let current = current();
        assert_eq!(
            skip_note(Skip::HasPhoto, "Ada Lovelace", Some(&current)),
            "Ada Lovelace already has a photo (from 1001.jpg, 2026-11-30); replace=missing_only keeps it"
        );
        assert_eq!(
            skip_note(Skip::NoPhoto, "Ada Lovelace", None),
            "Ada Lovelace has no photo yet; replace=existing_only only replaces existing photos"
        );
        assert_eq!(
            preview_note(Decision::Become, "Ada Lovelace", None),
            "would become Ada Lovelace's photo (none yet)"
        );
        assert_eq!(
            preview_note(Decision::Become, "Ada Lovelace", Some(&current)),
            "would replace the current photo from 1001.jpg (job job-a, 2026-11-30)"
        );
        assert_eq!(
            preview_note(Decision::Supersede, "Ada Lovelace", Some(&current)),
            "would be kept as an older version: the current photo, from 1001.jpg (job job-a, 2026-11-30), is a newer upload"
        );
        assert_eq!(
            preview_note(
                Decision::Skip(Skip::HasPhoto),
                "Ada Lovelace",
                Some(&current)
            ),
            "would be skipped: Ada Lovelace already has a photo (from 1001.jpg, 2026-11-30); replace=missing_only keeps it"
        );
    }
}
