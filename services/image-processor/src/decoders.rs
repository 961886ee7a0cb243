//! The threads that decode photos: as many as the image-processor has cores, each with its own
//! [`Processor`] (decoder, resizer and encoder state reused from photo to photo), all fed from
//! one queue. A thread that finishes a photo takes the next one waiting at once: no permit to
//! hand back through the async runtime and no hand-off to the blocking pool between photos, so a
//! core is not left idle while the runtime is busy elsewhere.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use pictureday_contract::events::Dependency;
use pictureday_imaging::{Config, ImageError, Processed, Processor};
use pictureday_platform::stage::Failure;
use tokio::sync::oneshot;

use crate::source::Fetched;

/// A photo to decode, and where its result goes.
struct Job {
    fetched: Fetched,
    reply: oneshot::Sender<Result<Processed, Failure>>,
}

/// The decoding threads. They end once this is dropped and the photos already queued are done.
pub struct Decoders {
    queue: Sender<Job>,
}

impl Decoders {
    /// Starts `threads` decoding threads with `config`.
    pub fn start(threads: usize, config: Config) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel();
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads.max(1) {
            let (jobs, config) = (jobs.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("image-decoder-{n}"))
                .spawn(move || decode_until_closed(&jobs, &config))?;
        }
        Ok(Self { queue })
    }

    /// Unpacks (a zip entry) and decodes one photo into its renditions, on a decoding thread.
    pub async fn process(&self, fetched: Fetched) -> Result<Processed, Failure> {
        let stopped = || {
            Failure::Failed(
                Dependency::Storage,
                anyhow::anyhow!("the image-processor's decoding threads have stopped"),
            )
        };
        let (reply, result) = oneshot::channel();
        self.queue
            .send(Job { fetched, reply })
            .map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}

fn decode_until_closed(jobs: &Mutex<Receiver<Job>>, config: &Config) {
    let mut processor = Processor::new(config.clone());
    loop {
        // One thread waits on the queue while the others wait for the lock; a panic can never
        // happen while it is held, so a poisoned lock is still sound.
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Job { fetched, reply }) = job else {
            return;
        };
        let result =
            match std::panic::catch_unwind(AssertUnwindSafe(|| decode(&mut processor, fetched))) {
                Ok(result) => result,
                Err(_) => {
                    // A decoder that panics on a file will panic on it every time; its state is
                    // not trusted for the next photo.
                    tracing::error!("the image decoder panicked on a photo");
                    processor = Processor::new(config.clone());
                    Err(Failure::Permanent(
                        "could not be decoded: the image decoder failed on it".into(),
                    ))
                }
            };
        // The photo's handler may have gone (shutdown): nobody is waiting for the result.
        let _ = reply.send(result);
    }
}

fn decode(processor: &mut Processor, fetched: Fetched) -> Result<Processed, Failure> {
    let bytes = fetched.into_bytes().map_err(crate::source_failure)?;
    processor.process(&bytes).map_err(image_failure)
}

fn image_failure(error: ImageError) -> Failure {
    if error.is_input_error() {
        Failure::Permanent(error.to_string())
    } else {
        Failure::Failed(Dependency::Storage, error.into())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn config() -> Config {
        crate::imaging_config(&pictureday_platform::config::PhotoLimits::default())
    }

    /// A 640×800 portrait JPEG.
    fn portrait() -> anyhow::Result<Bytes> {
        let image = image::RgbImage::from_fn(640, 800, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&image)?;
        Ok(jpeg.into())
    }

    #[tokio::test]
    async fn every_photo_gets_its_own_result_from_two_threads() -> anyhow::Result<()> {
        let decoders = Decoders::start(2, config())?;
        let photo = portrait()?;
        let garbage = Bytes::from_static(b"not a photo at all");
        let results = futures::future::join_all((0..6).map(|n| {
            let bytes = if n % 3 == 2 {
                garbage.clone()
            } else {
                photo.clone()
            };
            decoders.process(Fetched::Whole(bytes))
        }))
        .await;
        for (n, result) in results.into_iter().enumerate() {
            match result {
                Ok(processed) if n % 3 != 2 => {
                    let sizes: Vec<_> = processed
                        .renditions
                        .iter()
                        .map(|r| (r.name.as_str(), r.width, r.height))
                        .collect();
                    assert_eq!(
                        sizes,
                        [
                            ("large", 480, 600),
                            ("medium", 240, 300),
                            ("small", 96, 120)
                        ],
                        "photo {n}"
                    );
                }
                Err(Failure::Permanent(reason)) if n % 3 == 2 => {
                    assert!(!reason.is_empty(), "photo {n}");
                }
                Ok(_) => panic!("photo {n}: garbage was decoded"),
                Err(error) => panic!("photo {n}: {error:?}"),
            }
        }
        Ok(())
    }
}
