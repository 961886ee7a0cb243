//! One SSH connection: logs an account in (password or key, rate-limited and logged) and serves
//! the `sftp` subsystem over the account's drop folders. A file being written is streamed to a
//! spool file as its writes arrive; only at `close` is it stored and counted, so a connection
//! dropped mid-file leaves nothing counted (the spool file is removed with the session).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::PublicKey;
use russh::server::{Auth, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::Shared;
use super::accounts::{self, LoggedIn};
use super::drops::{DropError, SessionGuard};
use super::paths::{Folder, Place, resolve};

/// The SSH side of a connection.
pub struct Connection {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    account: Option<LoggedIn>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl Connection {
    pub fn new(shared: Arc<Shared>, peer: Option<SocketAddr>) -> Self {
        Self {
            shared,
            peer,
            account: None,
            channels: HashMap::new(),
        }
    }

    fn ip(&self) -> Option<std::net::IpAddr> {
        self.peer.map(|p| p.ip())
    }

    /// Records the outcome of a login attempt.
    fn outcome(&mut self, user: &str, method: &str, found: Option<LoggedIn>) -> Auth {
        match found {
            Some(account) => {
                tracing::info!(user, district = %account.district, peer = ?self.peer, method, "SFTP login");
                self.account = Some(account);
                Auth::Accept
            }
            None => {
                self.shared.limiter.failed(user, self.ip());
                // The user name is logged (it is not a secret), the password never.
                tracing::warn!(user, peer = ?self.peer, method, "SFTP login refused");
                Auth::reject()
            }
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = anyhow::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if !self.shared.limiter.allows(user, self.ip()) {
            tracing::warn!(user, peer = ?self.peer, "SFTP login refused: too many failures");
            return Ok(Auth::reject());
        }
        let found = accounts::check_password_login(&self.shared.ingest.db, user, password).await;
        Ok(self.outcome(user, "password", found))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !self.shared.limiter.allows(user, self.ip()) {
            tracing::warn!(user, peer = ?self.peer, "SFTP login refused: too many failures");
            return Ok(Auth::reject());
        }
        let key: &PublicKey = key.public_key;
        let found = accounts::check_key_login(&self.shared.ingest.db, user, key).await;
        Ok(self.outcome(user, "publickey", found))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(account), true) = (self.account.clone(), name == "sftp") else {
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        let Some(channel) = self.channels.remove(&channel_id) else {
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        session.channel_success(channel_id)?;
        let guard = self.shared.drops.enter(&account.username);
        let sftp = SftpSession {
            shared: self.shared.clone(),
            account,
            guard,
            handles: HashMap::new(),
            next_handle: 0,
        };
        russh_sftp::server::run(channel.into_stream(), sftp).await;
        Ok(())
    }
}

/// A file being written.
struct Upload {
    folder: Folder,
    name: String,
    path: PathBuf,
    file: tokio::fs::File,
    position: u64,
    size: u64,
    /// A write failed: the file is not counted at close.
    failed: Option<String>,
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Whatever was not stored is removed: a dropped connection leaves no half file.
        // Blocking but brief; the file is usually gone already (stored at close).
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(%error, path = %self.path.display(), "removing an SFTP spool file")
            }
        }
    }
}

enum Open {
    Upload(Box<Upload>),
    /// A folder being listed; `true` once its entries were sent.
    Dir {
        folder: Option<Folder>,
        place: Place,
        sent: bool,
    },
}

/// The SFTP side of a session: the account's folders and files.
struct SftpSession {
    shared: Arc<Shared>,
    account: LoggedIn,
    /// Keeps the account's drop open while the session lasts.
    guard: SessionGuard,
    handles: HashMap<String, Open>,
    next_handle: u64,
}

fn status(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn failure(code: StatusCode, message: impl Into<String>) -> StatusReply {
    StatusReply::new(code).with_message(message)
}

fn dir_attrs() -> FileAttributes {
    FileAttributes {
        permissions: Some(0o040_755),
        ..FileAttributes::empty()
    }
}

fn file_attrs(size: u64) -> FileAttributes {
    FileAttributes {
        size: Some(size),
        permissions: Some(0o100_644),
        ..FileAttributes::empty()
    }
}

impl SftpSession {
    fn handle(&mut self, open: Open) -> String {
        self.next_handle += 1;
        let handle = self.next_handle.to_string();
        self.handles.insert(handle.clone(), open);
        handle
    }

    fn user(&self) -> &str {
        self.guard.user()
    }

    /// What a path names, with the attributes it has.
    async fn attrs_of(&self, place: &Place) -> Result<Option<FileAttributes>, StatusReply> {
        Ok(match place {
            Place::Root | Place::Incoming | Place::Folder(_) => Some(dir_attrs()),
            Place::File(folder, name) => self
                .guard
                .drops()
                .size_of(self.user(), *folder, name)
                .await
                .map_err(drop_failure)?
                .map(file_attrs),
            Place::Nowhere => None,
        })
    }

    async fn stat_path(&self, path: &str) -> Result<FileAttributes, StatusReply> {
        self.attrs_of(&resolve(path).place)
            .await?
            .ok_or_else(|| failure(StatusCode::NoSuchFile, "no such file"))
    }

    async fn finish_upload(&self, upload: &mut Upload) -> Result<(), StatusReply> {
        if let Some(reason) = upload.failed.take() {
            return Err(failure(StatusCode::Failure, reason));
        }
        upload
            .file
            .flush()
            .await
            .map_err(|e| failure(StatusCode::Failure, format!("writing failed: {e}")))?;
        upload
            .file
            .sync_all()
            .await
            .map_err(|e| failure(StatusCode::Failure, format!("writing failed: {e}")))?;
        self.guard
            .drops()
            .add(
                self.user(),
                &self.account.district,
                upload.folder,
                &upload.name,
                &upload.path,
                upload.size,
            )
            .await
            .map_err(|e| match e {
                DropError::Refused(reason) => failure(StatusCode::Failure, reason),
                DropError::Storage(reason) => {
                    tracing::error!(district = %self.account.district, file = %upload.name, %reason, "an SFTP file could not be stored");
                    failure(StatusCode::Failure, format!("not stored, upload it again: {reason}"))
                }
            })
    }
}

impl russh_sftp::server::Handler for SftpSession {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusReply::new(StatusCode::OpUnsupported)
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        let Place::File(folder, name) = resolve(&filename).place else {
            return Err(failure(
                StatusCode::PermissionDenied,
                "files go in /incoming/idphotos/ or /incoming/data/",
            ));
        };
        if !pflags.contains(OpenFlags::WRITE) {
            // A drop folder is for sending: what was sent is not read back.
            return Err(failure(
                StatusCode::PermissionDenied,
                "files here are write-only",
            ));
        }
        let spool = self.shared.ingest.spool.join(format!(
            "sftp-{}",
            uuid_like(&self.account.username, self.next_handle)
        ));
        let file = tokio::fs::File::create(&spool)
            .await
            .map_err(|e| failure(StatusCode::Failure, format!("no room for the file: {e}")))?;
        let handle = self.handle(Open::Upload(Box::new(Upload {
            folder,
            name,
            path: spool,
            file,
            position: 0,
            size: 0,
            failed: None,
        })));
        Ok(Handle { id, handle })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let limit = self.shared.max_file_bytes;
        let Some(Open::Upload(upload)) = self.handles.get_mut(&handle) else {
            return Err(failure(StatusCode::Failure, "not a file open for writing"));
        };
        if upload.failed.is_some() {
            return Err(failure(StatusCode::Failure, "an earlier write failed"));
        }
        let end = offset.saturating_add(data.len() as u64);
        let is_photo =
            upload.folder == Folder::Photos && !upload.name.to_ascii_lowercase().contains(".zip");
        if is_photo && end > limit {
            let reason = format!(
                "{} is larger than the {} limit for one photo",
                upload.name,
                crate::upload::size_text(limit)
            );
            upload.failed = Some(reason.clone());
            return Err(failure(StatusCode::Failure, reason));
        }
        if offset != upload.position
            && let Err(e) = upload.file.seek(std::io::SeekFrom::Start(offset)).await
        {
            upload.failed = Some(e.to_string());
            return Err(failure(StatusCode::Failure, format!("writing failed: {e}")));
        }
        if let Err(e) = upload.file.write_all(&data).await {
            // A full disk is the client's error now, not a file accepted and then lost.
            upload.failed = Some(format!("writing failed: {e}"));
            return Err(failure(StatusCode::Failure, format!("writing failed: {e}")));
        }
        upload.position = end;
        upload.size = upload.size.max(end);
        Ok(status(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(Open::Upload(mut upload)) => {
                self.finish_upload(&mut upload).await?;
                Ok(status(id))
            }
            Some(Open::Dir { .. }) => Ok(status(id)),
            None => Err(failure(StatusCode::Failure, "no such handle")),
        }
    }

    async fn read(
        &mut self,
        _id: u32,
        _handle: String,
        _offset: u64,
        _len: u32,
    ) -> Result<Data, Self::Error> {
        Err(failure(
            StatusCode::PermissionDenied,
            "files here are write-only",
        ))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let place = resolve(&path).place;
        let folder = match &place {
            Place::Root | Place::Incoming => None,
            Place::Folder(folder) => Some(*folder),
            _ => return Err(failure(StatusCode::NoSuchFile, "no such folder")),
        };
        let handle = self.handle(Open::Dir {
            folder,
            place,
            sent: false,
        });
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let user = self.user().to_owned();
        let drops = self.guard.drops().clone();
        let Some(Open::Dir {
            folder,
            place,
            sent,
        }) = self.handles.get_mut(&handle)
        else {
            return Err(failure(StatusCode::Failure, "not a folder"));
        };
        if *sent {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        *sent = true;
        let mut files = vec![File::new(".", dir_attrs()), File::new("..", dir_attrs())];
        match (folder, place) {
            (Some(folder), _) => {
                let folder = *folder;
                files.extend(
                    drops
                        .listing(&user, folder)
                        .await
                        .map_err(drop_failure)?
                        .into_iter()
                        .map(|f| File::new(f.name, file_attrs(f.size))),
                );
            }
            (None, Place::Root) => {
                for name in ["incoming", "idphotos", "data"] {
                    files.push(File::new(name, dir_attrs()));
                }
            }
            (None, _) => {
                for name in ["idphotos", "data"] {
                    files.push(File::new(name, dir_attrs()));
                }
            }
        }
        Ok(Name { id, files })
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let resolved = resolve(&path);
        Ok(Name {
            id,
            files: vec![File::dummy(resolved.normal)],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        Ok(Attrs {
            id,
            attrs: self.stat_path(&path).await?,
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        self.stat(id, path).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let attrs = match self.handles.get(&handle) {
            Some(Open::Upload(upload)) => file_attrs(upload.size),
            Some(Open::Dir { .. }) => dir_attrs(),
            None => return Err(failure(StatusCode::Failure, "no such handle")),
        };
        Ok(Attrs { id, attrs })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        // Times and modes (`put -p`, WinSCP's "preserve timestamp") mean nothing here: accepted.
        self.stat_path(&path).await?;
        Ok(status(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        if self.handles.contains_key(&handle) {
            Ok(status(id))
        } else {
            Err(failure(StatusCode::Failure, "no such handle"))
        }
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        // The folders always exist: making one is done already (clients that create their
        // target folder first carry on); any other folder cannot be made.
        match resolve(&path).place {
            Place::Root | Place::Incoming | Place::Folder(_) => Ok(status(id)),
            _ => Err(failure(
                StatusCode::PermissionDenied,
                "only /incoming/idphotos and /incoming/data exist here",
            )),
        }
    }

    async fn rmdir(&mut self, _id: u32, _path: String) -> Result<Status, Self::Error> {
        Err(failure(
            StatusCode::PermissionDenied,
            "the drop folders cannot be removed",
        ))
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        let Place::File(folder, name) = resolve(&filename).place else {
            return Err(failure(StatusCode::NoSuchFile, "no such file"));
        };
        if self
            .guard
            .drops()
            .remove(self.user(), folder, &name)
            .await
            .map_err(drop_failure)?
        {
            Ok(status(id))
        } else {
            Err(failure(
                StatusCode::NoSuchFile,
                "no such file (or already imported)",
            ))
        }
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        let (Place::File(from_folder, from), Place::File(to_folder, to)) =
            (resolve(&oldpath).place, resolve(&newpath).place)
        else {
            return Err(failure(StatusCode::NoSuchFile, "no such file"));
        };
        if from_folder != to_folder {
            return Err(failure(
                StatusCode::PermissionDenied,
                "a file stays in the folder it was sent to",
            ));
        }
        match self
            .guard
            .drops()
            .rename(self.user(), from_folder, &from, &to)
            .await
        {
            Ok(true) => Ok(status(id)),
            Ok(false) => Err(failure(
                StatusCode::NoSuchFile,
                "no such file (or already imported)",
            )),
            Err(DropError::Refused(reason) | DropError::Storage(reason)) => {
                Err(failure(StatusCode::Failure, reason))
            }
        }
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Result<Name, Self::Error> {
        Err(failure(StatusCode::NoSuchFile, "no links here"))
    }

    async fn symlink(
        &mut self,
        _id: u32,
        _linkpath: String,
        _targetpath: String,
    ) -> Result<Status, Self::Error> {
        Err(failure(StatusCode::PermissionDenied, "no links here"))
    }
}

/// A drop that could not be read or changed (the database failed): the client may try again.
fn drop_failure(error: DropError) -> StatusReply {
    match error {
        DropError::Refused(reason) => failure(StatusCode::Failure, reason),
        DropError::Storage(reason) => {
            tracing::error!(%reason, "an SFTP drop could not be read or changed");
            failure(StatusCode::Failure, format!("try again: {reason}"))
        }
    }
}

/// A spool file name unique to this process: the account, a counter and a random part.
fn uuid_like(user: &str, n: u64) -> String {
    let random: u64 = rand::random();
    format!("{user}-{n}-{random:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection dropped mid-file drops its open uploads: nothing of the file is left to be
    /// counted or to fill the spool.
    #[tokio::test]
    async fn a_file_never_closed_leaves_no_spool_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sftp-part");
        let mut file = tokio::fs::File::create(&path).await?;
        file.write_all(b"half a photo").await?;
        let upload = Upload {
            folder: Folder::Photos,
            name: "1234.jpg".into(),
            path: path.clone(),
            file,
            position: 12,
            size: 12,
            failed: None,
        };
        assert!(path.exists());
        drop(upload);
        assert!(!path.exists());
        Ok(())
    }
}
