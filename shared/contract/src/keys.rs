//! Object keys, in one place so their layout is documented by code. Every key starts with its
//! district, so one district's objects can never be addressed through another's.

use crate::DistrictId;

pub fn upload_file(district: &DistrictId, job_id: &str, seq: u32) -> String {
    format!("{district}/uploads/{job_id}/files/{seq}")
}

pub fn upload_archive(district: &DistrictId, job_id: &str, n: usize) -> String {
    format!("{district}/uploads/{job_id}/archive-{n}.zip")
}

/// A file sent over SFTP into a drop that will become the job `job_id`: stored as it is
/// closed, before the job exists, so it is named by a random `id`, not its place in the job.
pub fn upload_dropped(district: &DistrictId, job_id: &str, id: &str) -> String {
    format!("{district}/uploads/{job_id}/dropped/{id}")
}

/// A piece of a resumable upload, bytes from `start`; `id` keeps two attempts at the same
/// piece apart.
pub fn resumable_piece(district: &DistrictId, upload_id: &str, start: u64, id: &str) -> String {
    format!("{district}/resumable/{upload_id}/{start:020}-{id}")
}

/// Everything a resumable upload stored before it became a job.
pub fn resumable_prefix(district: &DistrictId, upload_id: &str) -> String {
    format!("{district}/resumable/{upload_id}/")
}

/// Everything one upload stored: the source of any of its files lies under it.
pub fn upload_prefix(district: &DistrictId, job_id: &str) -> String {
    format!("{district}/uploads/{job_id}/")
}

/// Whether `key` names an object of this upload: under its prefix, with no `.` or `..` part that
/// could lead out of it. Consumers check what an event claims before acting on it.
pub fn belongs_to_upload(key: &str, district: &DistrictId, job_id: &str) -> bool {
    plain_path(key) && key.starts_with(&upload_prefix(district, job_id))
}

/// A roster CSV dropped over SFTP, stored for roster to import. Its folder is the file's alone:
/// roster deletes the folder once the import ends.
pub fn sftp_roster(district: &DistrictId, id: &str) -> String {
    format!("{district}/sftp-rosters/{id}/roster.csv")
}

/// Whether `key` names a roster CSV of this district dropped over SFTP.
pub fn is_sftp_roster(key: &str, district: &DistrictId) -> bool {
    plain_path(key)
        && key.starts_with(&format!("{district}/sftp-rosters/"))
        && key.ends_with("/roster.csv")
}

/// The folder an older build stored each of a photo's renditions in as its own object, without
/// the final `/` (photos stored since are one object: [`renditions`]).
pub fn photo_prefix(district: &DistrictId, photo_id: &str) -> String {
    format!("{district}/photos/{photo_id}")
}

/// A photo's renditions, one after another in one object: one write (and one `fsync`, or one
/// S3 request) per photo instead of one per rendition and a folder. Each rendition's offset and
/// length are in the photo's `renditions` list.
pub fn renditions(district: &DistrictId, photo_id: &str) -> String {
    format!("{district}/photos/{photo_id}.jpgs")
}

/// Whether `key` holds renditions of this photo (its one object, or an older build's folder).
pub fn belongs_to_photo(key: &str, district: &DistrictId, photo_id: &str) -> bool {
    plain_path(key)
        && (key == renditions(district, photo_id)
            || key.starts_with(&format!("{}/", photo_prefix(district, photo_id))))
}

fn plain_path(key: &str) -> bool {
    !key.split(['/', '\\'])
        .any(|part| part == ".." || part == "." || part.is_empty())
}

/// Where an older build stored one rendition of a photo (still read, never written).
pub fn rendition(district: &DistrictId, photo_id: &str, name: &str) -> String {
    format!("{district}/photos/{photo_id}/{name}.jpg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photos_renditions_are_its_one_object_or_its_old_folder() -> anyhow::Result<()> {
        let d = DistrictId::parse("springfield")?;
        let other = DistrictId::parse("shelbyville")?;
        assert_eq!(renditions(&d, "p1"), "springfield/photos/p1.jpgs");
        assert!(belongs_to_photo(&renditions(&d, "p1"), &d, "p1"));
        assert!(belongs_to_photo(&rendition(&d, "p1", "large"), &d, "p1"));
        // Not another photo's (even one whose id starts the same), district's, or a way out.
        assert!(!belongs_to_photo(&renditions(&d, "p10"), &d, "p1"));
        assert!(!belongs_to_photo(&rendition(&d, "p10", "large"), &d, "p1"));
        assert!(!belongs_to_photo(&renditions(&other, "p1"), &d, "p1"));
        assert!(!belongs_to_photo(
            "springfield/photos/p1/../p2.jpgs",
            &d,
            "p1"
        ));
        assert!(!belongs_to_photo("springfield/photos/p1.jpgs/x", &d, "p1"));
        Ok(())
    }
}
