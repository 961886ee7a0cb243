//! Object keys, in one place so their layout is documented by code. Every key starts with its
//! district, so one district's objects can never be addressed through another's.

use crate::DistrictId;

pub fn upload_file(district: &DistrictId, job_id: &str, seq: u32) -> String {
    format!("{district}/uploads/{job_id}/files/{seq}")
}

pub fn upload_archive(district: &DistrictId, job_id: &str, n: usize) -> String {
    format!("{district}/uploads/{job_id}/archive-{n}.zip")
}

/// Everything one upload stored: the source of any of its files lies under it.
pub fn upload_prefix(district: &DistrictId, job_id: &str) -> String {
    format!("{district}/uploads/{job_id}/")
}

pub fn rendition(district: &DistrictId, photo_id: &str, name: &str) -> String {
    format!("{district}/photos/{photo_id}/{name}.jpg")
}
