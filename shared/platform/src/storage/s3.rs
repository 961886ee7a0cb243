//! Storage in an S3 bucket, on AWS or any S3-compatible server. Objects live under the configured
//! prefix, so a bucket can be shared with other data; an object appears whole or not at all, as
//! S3 itself guarantees for a finished PUT or multipart upload.

use std::fmt;
use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{StorageError, check_key};

/// Files larger than this are uploaded in parts of this size (a bigger file in one PUT would be
/// one long request that a dropped connection restarts from the beginning).
pub const DEFAULT_PART_SIZE: u64 = 64 * 1024 * 1024;
/// S3's smallest part (except the last).
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's most parts in one upload.
const MAX_PARTS: u64 = 10_000;
/// Parts of one upload sent at once: one connection's stream (checksums, TLS, the server's own
/// writes) is slower than the disk it is read from, so a large upload sent part after part
/// waited on one round trip at a time.
const PARTS_AT_ONCE: usize = 4;

/// Static credentials, for when the standard AWS chain is not wanted (tests).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Without leading or trailing slash; empty for the bucket's root.
    pub prefix: String,
    /// An S3-compatible server. Unset: `AWS_ENDPOINT_URL`, else AWS itself.
    pub endpoint_url: Option<String>,
    /// Unset: `AWS_REGION`, `AWS_DEFAULT_REGION` or the AWS config files, else `us-east-1`.
    pub region: Option<String>,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`, as most S3-compatible servers
    /// want.
    pub force_path_style: bool,
    /// Unset: the standard AWS chain (environment, profile, web identity, container, instance).
    pub credentials: Option<S3Credentials>,
    /// Files above this size are uploaded in parts of (at least) this size.
    pub part_size: u64,
    /// Host names answered with these addresses instead of DNS (others still use DNS), for a
    /// virtual-hosted bucket name that DNS does not know, as on a test or air-gapped network.
    pub resolve: Vec<(String, std::net::IpAddr)>,
}

/// DNS with some names answered from a fixed table.
#[derive(Debug, Clone)]
struct PinnedResolver {
    pinned: std::sync::Arc<Vec<(String, std::net::IpAddr)>>,
}

impl aws_smithy_runtime_api::client::dns::ResolveDns for PinnedResolver {
    fn resolve_dns<'a>(
        &'a self,
        name: &'a str,
    ) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDnsError};
        let pinned: Vec<std::net::IpAddr> = self
            .pinned
            .iter()
            .filter(|(host, _)| host.eq_ignore_ascii_case(name))
            .map(|(_, ip)| *ip)
            .collect();
        if !pinned.is_empty() {
            return DnsFuture::ready(Ok(pinned));
        }
        let name = name.to_owned();
        DnsFuture::new(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(ResolveDnsError::new)?;
            Ok(found.map(|address| address.ip()).collect())
        })
    }
}

impl S3Config {
    /// Parses what follows `s3://`: `bucket` or `bucket/prefix`.
    pub(super) fn parse(rest: &str) -> Result<Self, String> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(format!(
                "{bucket:?} is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && check_key(prefix).is_err() {
            return Err(format!(
                "the prefix {prefix:?} has an empty, '.', '..' or hidden segment"
            ));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint_url: None,
            region: None,
            force_path_style: false,
            credentials: None,
            part_size: DEFAULT_PART_SIZE,
            resolve: Vec::new(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: u64,
}

impl S3Store {
    /// Whether the bucket answers.
    pub(super) async fn probe(&self) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| StorageError::S3 {
                key: String::new(),
                message: format!("bucket {}: {error}", self.bucket),
            })
    }

    /// Builds a client and checks the bucket is there, so a wrong name or endpoint stops a
    /// service at start rather than failing its first upload.
    pub async fn open(config: &S3Config) -> Result<Self, StorageError> {
        // rustls on ring, which the NATS client already builds, rather than the SDK's default
        // aws-lc-rs.
        let builder = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        let http_client = if config.resolve.is_empty() {
            builder.build_https()
        } else {
            builder.build_with_resolver(PinnedResolver {
                pinned: std::sync::Arc::new(config.resolve.clone()),
            })
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(credentials) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(
                &credentials.access_key_id,
                &credentials.secret_access_key,
                None,
                None,
                "pictureday",
            ));
        }
        let shared = loader.load().await;
        let endpoint = shared
            .endpoint_url()
            .map_or_else(|| "AWS".to_owned(), str::to_owned);
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            // Checksums only where S3 requires them: many S3-compatible servers do not
            // understand the trailing checksums the SDK would otherwise add to every upload.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if shared.region().is_none() {
            builder = builder.region(Region::from_static("us-east-1"));
        }
        let store = Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            part_size: config.part_size.max(MIN_PART_SIZE),
        };
        match store
            .client
            .head_bucket()
            .bucket(&store.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(store),
            Err(error) if status(&error) == Some(404) => Err(StorageError::NoBucket {
                bucket: store.bucket.clone(),
            }),
            Err(error @ (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))) => {
                Err(StorageError::S3 {
                    key: format!("bucket {} at {endpoint} (AWS_ENDPOINT_URL)", store.bucket),
                    message: DisplayErrorContext(error).to_string(),
                })
            }
            Err(error) => Err(StorageError::S3 {
                key: format!("bucket {}", store.bucket),
                message: DisplayErrorContext(error).to_string(),
            }),
        }
    }

    fn object_key(&self, key: &str) -> Result<String, StorageError> {
        check_key(key)?;
        Ok(if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        })
    }

    /// Deletes every object under `prefix/`, one request each (not every S3-compatible server
    /// takes batch deletes); returns how many were deleted.
    pub(super) async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let under = format!("{}/", self.object_key(prefix)?);
        let mut deleted = 0u64;
        loop {
            // Listed again from the start each round: what was deleted is gone from the list,
            // so no continuation token can go stale.
            let listed = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&under)
                .max_keys(1000)
                .send()
                .await
                .map_err(|e| request_error(prefix, e))?;
            let keys: Vec<String> = listed
                .contents()
                .iter()
                .filter_map(|object| object.key().map(str::to_owned))
                .collect();
            if keys.is_empty() {
                return Ok(deleted);
            }
            for key in keys {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| request_error(prefix, e))?;
                deleted += 1;
            }
        }
    }

    /// Deletes one object; `false` when it was not there. S3 answers a DELETE of a missing key
    /// as a success, so a HEAD first tells the two apart (for counts of what was deleted).
    pub(super) async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let object = self.object_key(key)?;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await;
        match head.map_err(|e| request_error(key, e)) {
            Ok(_) => {}
            Err(StorageError::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error),
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
            .map_err(|e| request_error(key, e))?;
        Ok(true)
    }

    /// Uploads a local file, streaming it from disk (in parts when it is large), then removes it.
    pub(super) async fn put_file(&self, key: &str, path: &Path) -> Result<(), StorageError> {
        let object = self.object_key(key)?;
        let io = |source| StorageError::Io {
            key: key.into(),
            source,
        };
        let size = tokio::fs::metadata(path).await.map_err(io)?.len();
        if size <= self.part_size {
            let body = file_stream(key, path, 0, size).await?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&object)
                .content_length(to_i64(size))
                .body(body)
                .send()
                .await
                .map_err(|e| request_error(key, e))?;
        } else {
            self.put_multipart(key, &object, path, size).await?;
        }
        tokio::fs::remove_file(path).await.map_err(io)?;
        Ok(())
    }

    async fn put_multipart(
        &self,
        key: &str,
        object: &str,
        path: &Path,
        size: u64,
    ) -> Result<(), StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
            .map_err(|e| request_error(key, e))?;
        let upload_id = created.upload_id().ok_or_else(|| StorageError::S3 {
            key: key.into(),
            message: "the multipart upload came back without an id".into(),
        })?;
        match self.put_parts(key, object, upload_id, path, size).await {
            Ok(parts) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(object)
                    .upload_id(upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| request_error(key, e))?;
                Ok(())
            }
            Err(error) => {
                // Parts of an abandoned upload are billed until aborted.
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(object)
                    .upload_id(upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(key, error = %DisplayErrorContext(abort), "aborting a multipart upload failed");
                }
                Err(error)
            }
        }
    }

    /// Uploads the parts [`PARTS_AT_ONCE`] at a time, each streamed from its range of the file,
    /// so memory stays flat whatever the file's size; the parts come back in order.
    async fn put_parts(
        &self,
        key: &str,
        object: &str,
        upload_id: &str,
        path: &Path,
        size: u64,
    ) -> Result<Vec<CompletedPart>, StorageError> {
        let part_size = self.part_size.max(size.div_ceil(MAX_PARTS));
        let ranges = (0..size.div_ceil(part_size)).map(|index| {
            let offset = index * part_size;
            (index + 1, offset, part_size.min(size - offset))
        });
        let upload = PartsOf {
            key,
            object,
            upload_id,
            path,
        };
        futures::stream::iter(ranges)
            .map(|(number, offset, len)| self.put_part(&upload, number, offset, len))
            .buffered(PARTS_AT_ONCE)
            .try_collect()
            .await
    }

    /// Uploads part `number` of `upload`: `len` bytes of its file at `offset`.
    async fn put_part(
        &self,
        upload: &PartsOf<'_>,
        number: u64,
        offset: u64,
        len: u64,
    ) -> Result<CompletedPart, StorageError> {
        let key = upload.key;
        let number = i32::try_from(number).map_err(|_| StorageError::S3 {
            key: key.into(),
            message: "too many parts".into(),
        })?;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(upload.object)
            .upload_id(upload.upload_id)
            .part_number(number)
            .content_length(to_i64(len))
            .body(file_stream(key, upload.path, offset, len).await?)
            .send()
            .await
            .map_err(|e| request_error(key, e))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(uploaded.e_tag().map(str::to_owned))
            .build())
    }

    pub(super) async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let object = self.object_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| request_error(key, e))?;
        Ok(())
    }

    pub(super) async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let object = self.object_key(key)?;
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
            .map_err(|e| request_error(key, e))?;
        read_body(key, response.body).await
    }

    pub(super) async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, StorageError> {
        let object = self.object_key(key)?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let last = offset
            .checked_add(len - 1)
            .ok_or_else(|| StorageError::InvalidKey { key: key.into() })?;
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object)
            .range(format!("bytes={offset}-{last}"))
            .send()
            .await
            .map_err(|e| request_error(key, e))?;
        let bytes = read_body(key, response.body).await?;
        // A range past the end comes back short rather than failing; the local store's
        // `read_exact` fails then, and so does this.
        if bytes.len() as u64 != len {
            return Err(StorageError::Io {
                key: key.into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("asked for {len} bytes at {offset}, got {}", bytes.len()),
                ),
            });
        }
        Ok(bytes)
    }
}

/// A multipart upload of a file: our key, the bucket's object, the upload's id and the file.
struct PartsOf<'a> {
    key: &'a str,
    object: &'a str,
    upload_id: &'a str,
    path: &'a Path,
}

/// A body that reads `len` bytes of the file at `offset` as it is sent (and again on a retry).
async fn file_stream(
    key: &str,
    path: &Path,
    offset: u64,
    len: u64,
) -> Result<ByteStream, StorageError> {
    ByteStream::read_from()
        .path(path)
        .offset(offset)
        .length(Length::Exact(len))
        .build()
        .await
        .map_err(|e| StorageError::S3 {
            key: key.into(),
            message: format!("reading {}: {e}", path.display()),
        })
}

async fn read_body(key: &str, body: ByteStream) -> Result<Bytes, StorageError> {
    body.collect()
        .await
        .map(|data| data.into_bytes())
        .map_err(|e| StorageError::S3 {
            key: key.into(),
            message: format!("reading the response: {}", DisplayErrorContext(e)),
        })
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn status<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

fn request_error<E>(key: &str, error: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = error.as_service_error().and_then(|e| e.code());
    // A GET of a missing key says NoSuchKey; a HEAD (no body) only says 404. A missing bucket is
    // a 404 too, but not a missing object.
    let not_found =
        code == Some("NoSuchKey") || (status(&error) == Some(404) && code != Some("NoSuchBucket"));
    if not_found {
        StorageError::NotFound { key: key.into() }
    } else {
        StorageError::S3 {
            key: key.into(),
            message: DisplayErrorContext(error).to_string(),
        }
    }
}
