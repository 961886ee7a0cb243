//! S3 storage against a real S3-protocol server: large files go up in parts streamed from disk,
//! ranges are ranged GETs, keys stay under the prefix, and a bad bucket or endpoint is refused at
//! start. (The local store's equivalents are unit tests of pictureday-platform.)

use std::io::Write;

use bytes::Bytes;
use pictureday_platform::storage::{S3Config, Storage, StorageConfig, StorageError};
use pictureday_tests::{S3Server, free_port};

fn config(server: &S3Server, raw: &str) -> anyhow::Result<S3Config> {
    let StorageConfig::S3(mut config) =
        StorageConfig::parse(raw).map_err(|reason| anyhow::anyhow!(reason))?
    else {
        anyhow::bail!("{raw} is not S3");
    };
    config.endpoint_url = Some(server.endpoint.clone());
    config.region = Some("us-east-1".into());
    config.force_path_style = true;
    config.credentials = Some(server.credentials());
    Ok(config)
}

#[tokio::test]
async fn s3_store_streams_parts_reads_ranges_and_keeps_to_its_prefix() -> anyhow::Result<()> {
    let server = S3Server::start().await?;
    let mut config = config(&server, "s3://pictureday-test/tenant/prod")?;
    // The smallest part S3 allows, so a modest file takes six: more than go up at once, and the
    // object must still be the file's bytes in order.
    config.part_size = 5 * 1024 * 1024;
    let storage = Storage::open(&StorageConfig::S3(config)).await?;

    let content: Vec<u8> = (0..27 * 1024 * 1024 + 7).map(|n| (n % 251) as u8).collect();
    let spool = tempfile::tempdir()?;
    let path = spool.path().join("upload");
    std::fs::File::create(&path)?.write_all(&content)?;
    storage
        .put_file("d1/uploads/j/archive-0.zip", &path)
        .await?;
    assert!(!path.exists(), "the spooled file is consumed");

    let on_disk = server
        .bucket_dir()
        .join("tenant/prod/d1/uploads/j/archive-0.zip");
    assert_eq!(std::fs::read(&on_disk)?, content);
    assert_eq!(storage.get("d1/uploads/j/archive-0.zip").await?, content);
    let offset = 5 * 1024 * 1024 - 3;
    assert_eq!(
        storage
            .get_range("d1/uploads/j/archive-0.zip", offset as u64, 10)
            .await?,
        content[offset..offset + 10]
    );
    assert!(
        storage
            .get_range("d1/uploads/j/archive-0.zip", content.len() as u64 - 2, 10)
            .await
            .is_err(),
        "a range past the end is an error, as on disk"
    );

    // A small file goes up in one PUT; bytes too.
    std::fs::write(&path, b"small")?;
    storage.put_file("d1/uploads/j/files/0", &path).await?;
    assert_eq!(&storage.get("d1/uploads/j/files/0").await?[..], b"small");
    storage
        .put_bytes("d1/photos/p/small.jpg", Bytes::from_static(b"jpeg"))
        .await?;
    assert_eq!(&storage.get("d1/photos/p/small.jpg").await?[..], b"jpeg");

    assert!(matches!(
        storage.get("d1/photos/p/missing.jpg").await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        storage.get_range("d1/photos/p/missing.jpg", 0, 4).await,
        Err(StorageError::NotFound { .. })
    ));
    for key in ["../x", "d1/../x", "d1//x", "/d1/x"] {
        assert!(matches!(
            storage.get(key).await,
            Err(StorageError::InvalidKey { .. })
        ));
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_bucket_or_unreachable_endpoint_stops_at_start() -> anyhow::Result<()> {
    let server = S3Server::start().await?;
    let missing = Storage::open(&StorageConfig::S3(config(&server, "s3://no-such-bucket")?)).await;
    assert!(
        matches!(&missing, Err(StorageError::NoBucket { bucket }) if bucket == "no-such-bucket"),
        "{missing:?}"
    );

    let mut wrong_key = config(&server, "s3://pictureday-test")?;
    if let Some(credentials) = &mut wrong_key.credentials {
        credentials.secret_access_key = "not-the-secret".into();
    }
    let refused = Storage::open(&StorageConfig::S3(wrong_key)).await;
    assert!(
        matches!(refused, Err(StorageError::S3 { .. })),
        "{refused:?}"
    );

    let mut unreachable = config(&server, "s3://pictureday-test")?;
    unreachable.endpoint_url = Some(format!("http://127.0.0.1:{}", free_port()?));
    let error = match Storage::open(&StorageConfig::S3(unreachable)).await {
        Ok(_) => anyhow::bail!("opened storage on a closed port"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("AWS_ENDPOINT_URL"), "{error}");
    Ok(())
}

#[tokio::test]
async fn s3_store_addresses_the_bucket_by_host_name() -> anyhow::Result<()> {
    // The bucket is named only in the host name (`pictureday-test.s3.test`), as on AWS by
    // default. Only that name resolves (pinned to loopback): a path-style request, to
    // `s3.test`, could not even connect.
    let server = S3Server::start_with_domain(Some("s3.test")).await?;
    let mut config = config(&server, "s3://pictureday-test/vhost")?;
    let port = server
        .endpoint
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    config.endpoint_url = Some(format!("http://s3.test:{port}"));
    config.force_path_style = false;
    config.resolve = vec![("pictureday-test.s3.test".into(), "127.0.0.1".parse()?)];
    let storage = Storage::open(&StorageConfig::S3(config)).await?;
    storage
        .put_bytes("d1/photos/p/large.jpg", Bytes::from_static(b"portrait"))
        .await?;
    assert_eq!(
        std::fs::read(server.bucket_dir().join("vhost/d1/photos/p/large.jpg"))?,
        b"portrait"
    );
    assert_eq!(
        storage.get("d1/photos/p/large.jpg").await?,
        Bytes::from_static(b"portrait")
    );
    Ok(())
}
