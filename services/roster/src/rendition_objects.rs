//! Where a photo's renditions are in storage: one object per photo with each rendition at its
//! offset, or (photos stored by an older build) a folder with an object per rendition.

use bytes::Bytes;
use pictureday_contract::events::RenditionRef;
use pictureday_contract::renditions::RENDITIONS;
use pictureday_contract::{DistrictId, keys};
use pictureday_platform::storage::{Storage, StorageError};

/// The bytes of one rendition.
pub async fn read(storage: &Storage, rendition: &RenditionRef) -> Result<Bytes, StorageError> {
    match rendition.range() {
        Some((offset, len)) => storage.get_range(&rendition.key, offset, len).await,
        None => storage.get(&rendition.key).await,
    }
}

/// Deletes every rendition of a photo, in either layout; returns how many renditions that was
/// (a photo's one object holds one of each size).
pub async fn delete_photo(
    storage: &Storage,
    district: &DistrictId,
    photo_id: &str,
) -> Result<u64, StorageError> {
    let packed = storage
        .delete(&keys::renditions(district, photo_id))
        .await?;
    let loose = storage
        .delete_prefix(&keys::photo_prefix(district, photo_id))
        .await?;
    let in_packed = if packed { RENDITIONS.len() as u64 } else { 0 };
    Ok(in_packed + loose)
}
