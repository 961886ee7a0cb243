//! The neutral image served for a person without a photo: a grey silhouette, one per rendition
//! size, drawn once at start.

use std::collections::HashMap;
use std::io::Cursor;

use bytes::Bytes;
use image::{ImageFormat, Rgb, RgbImage};
use pictureday_contract::renditions::RENDITIONS;

pub struct Placeholders {
    by_size: HashMap<&'static str, Bytes>,
}

const BACKGROUND: Rgb<u8> = Rgb([0xe4, 0xe7, 0xeb]);
const FIGURE: Rgb<u8> = Rgb([0xb4, 0xbb, 0xc4]);

fn draw(width: u32, height: u32) -> RgbImage {
    let (w, h) = (width as f32, height as f32);
    let head = (w * 0.5, h * 0.38, w * 0.19);
    let shoulders = (w * 0.5, h * 1.02, w * 0.42, h * 0.34);
    RgbImage::from_fn(width, height, |x, y| {
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        let in_head = (px - head.0).powi(2) + (py - head.1).powi(2) <= head.2.powi(2);
        let in_body = ((px - shoulders.0) / shoulders.2).powi(2)
            + ((py - shoulders.1) / shoulders.3).powi(2)
            <= 1.0;
        if in_head || in_body {
            FIGURE
        } else {
            BACKGROUND
        }
    })
}

impl Placeholders {
    pub fn render() -> Result<Self, image::ImageError> {
        let mut by_size = HashMap::new();
        for size in &RENDITIONS {
            let mut out = Cursor::new(Vec::new());
            draw(size.width, size.height).write_to(&mut out, ImageFormat::Jpeg)?;
            by_size.insert(size.name, Bytes::from(out.into_inner()));
        }
        Ok(Self { by_size })
    }

    pub fn get(&self, size: &str) -> Option<Bytes> {
        self.by_size.get(size).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_have_each_rendition_size() -> anyhow::Result<()> {
        let placeholders = Placeholders::render()?;
        for size in &RENDITIONS {
            let bytes = placeholders
                .get(size.name)
                .ok_or_else(|| anyhow::anyhow!("missing"))?;
            let decoded = image::load_from_memory(&bytes)?;
            assert_eq!(
                (decoded.width(), decoded.height()),
                (size.width, size.height)
            );
        }
        Ok(())
    }
}
