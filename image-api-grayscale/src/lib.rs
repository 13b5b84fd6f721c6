//! image-api-grayscale: image in, grayscale image out.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /grayscale` | the image in grayscale, same size: base64 PNG text by default (the original template's format), raw bytes with `Accept: image/png` / `image/gif`; GIF in, GIF out (every frame) |
//! | `GET /healthz` | `{"status":"ok"}` |
//!
//! This file is the pure core (decode, convert, encode); `main.rs` is the
//! wasi:http handler around it. Run it alone with
//! `dapr run --app-id image-api-grayscale --app-port 9005 --dapr-http-port 3503 ...`
//! (see this crate's README).

use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, Frame, ImageEncoder, ImageFormat, Rgba, RgbaImage};
pub use service_common::{ApiError, ImageLimits};

/// A converted image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grayscaled {
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// `Png` or `Gif`.
    pub format: ImageFormat,
    /// Width in pixels (same as the input).
    pub width: u32,
    /// Height in pixels (same as the input).
    pub height: u32,
}

impl Grayscaled {
    /// MIME type of [`Self::bytes`].
    pub fn content_type(&self) -> &'static str {
        if self.format == ImageFormat::Gif {
            "image/gif"
        } else {
            "image/png"
        }
    }
}

/// How the caller wants the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Base64 text of the image (default, as the original template).
    Base64,
    /// Raw image bytes with their Content-Type.
    Raw,
}

/// Picks the answer encoding from an `Accept` header.
pub fn negotiate(accept: Option<&str>) -> Encoding {
    let wants_raw = accept.is_some_and(|a| {
        a.split(',')
            .map(|m| {
                m.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .any(|m| {
                m == "image/png"
                    || m == "image/gif"
                    || m == "image/*"
                    || m == "application/octet-stream"
            })
    });
    if wants_raw {
        Encoding::Raw
    } else {
        Encoding::Base64
    }
}

/// Converts an uploaded image to grayscale. GIFs stay GIFs (all frames,
/// timing kept); everything else becomes PNG (alpha kept).
pub fn grayscale(bytes: &[u8], limits: &ImageLimits) -> Result<Grayscaled, ApiError> {
    let info = service_common::decode::probe(bytes, limits)?;
    if info.format == ImageFormat::Gif {
        return grayscale_gif(bytes, limits);
    }
    let (_, img) = service_common::decode::decode(bytes, limits)?;
    let (width, height) = (img.width(), img.height());
    let mut out = Vec::with_capacity(bytes.len() / 2);
    // Fast deflate: the output is re-encoded for every request and size
    // matters less than latency here.
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    let result = if img.color().has_alpha() {
        let gray = img.to_luma_alpha8();
        encoder.write_image(gray.as_raw(), width, height, image::ExtendedColorType::La8)
    } else {
        let gray = img.to_luma8();
        encoder.write_image(gray.as_raw(), width, height, image::ExtendedColorType::L8)
    };
    result
        .map_err(|e| ApiError::new(500, "encode_failed", format!("could not encode PNG: {e}")))?;
    Ok(Grayscaled {
        bytes: out,
        format: ImageFormat::Png,
        width,
        height,
    })
}

fn grayscale_gif(bytes: &[u8], limits: &ImageLimits) -> Result<Grayscaled, ApiError> {
    let frames = service_common::decode::decode_gif_frames(bytes, limits)?;
    let info = service_common::decode::probe(bytes, limits)?;
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(|e| ApiError::new(500, "encode_failed", e.to_string()))?;
        let gray_frames = frames.into_iter().map(|f| {
            let (left, top, delay) = (f.left(), f.top(), f.delay());
            let mut buf: RgbaImage = f.into_buffer();
            gray_rgba_in_place(&mut buf);
            Frame::from_parts(buf, left, top, delay)
        });
        encoder.encode_frames(gray_frames).map_err(|e| {
            ApiError::new(500, "encode_failed", format!("could not encode GIF: {e}"))
        })?;
    }
    Ok(Grayscaled {
        bytes: out,
        format: ImageFormat::Gif,
        width: info.width,
        height: info.height,
    })
}

/// Rec. 709 luma, the weights `image` uses for `to_luma8`, keeping alpha.
fn gray_rgba_in_place(buf: &mut RgbaImage) {
    for Rgba([r, g, b, _]) in buf.pixels_mut() {
        let y = ((u32::from(*r) * 2126 + u32::from(*g) * 7152 + u32::from(*b) * 722) / 10000) as u8;
        (*r, *g, *b) = (y, y, y);
    }
}

/// Converts for callers that already hold pixels (benchmarks, tests).
pub fn to_gray(img: &DynamicImage) -> image::GrayImage {
    img.to_luma8()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb};
    use std::io::Cursor;

    fn encode(img: DynamicImage, f: ImageFormat) -> Vec<u8> {
        let mut c = Cursor::new(Vec::new());
        img.write_to(&mut c, f).expect("encode");
        c.into_inner()
    }

    fn colourful(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([(x * 40) as u8, (y * 60) as u8, 200])
        }))
    }

    #[test]
    fn jpeg_becomes_gray_png_of_same_size() {
        let out = grayscale(
            &encode(colourful(13, 7), ImageFormat::Jpeg),
            &ImageLimits::default(),
        )
        .expect("ok");
        assert_eq!(out.format, ImageFormat::Png);
        let back = image::load_from_memory(&out.bytes).expect("decodes");
        assert_eq!((back.width(), back.height()), (13, 7));
        assert_eq!(back.color(), image::ColorType::L8);
    }

    #[test]
    fn alpha_is_kept() {
        let img = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(4, 4, Rgba([255, 0, 0, 128])));
        let out = grayscale(&encode(img, ImageFormat::Png), &ImageLimits::default()).expect("ok");
        let back = image::load_from_memory(&out.bytes).expect("decodes");
        assert_eq!(back.color(), image::ColorType::La8);
        assert_eq!(back.to_luma_alpha8().get_pixel(0, 0)[1], 128);
    }

    #[test]
    fn gif_stays_gif_and_gray() {
        let out = grayscale(
            &encode(colourful(9, 5), ImageFormat::Gif),
            &ImageLimits::default(),
        )
        .expect("ok");
        assert_eq!(out.format, ImageFormat::Gif);
        assert_eq!(out.content_type(), "image/gif");
        let back = image::load_from_memory(&out.bytes)
            .expect("decodes")
            .to_rgb8();
        assert_eq!(back.dimensions(), (9, 5));
        assert!(back.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn bad_input_maps_to_4xx() {
        let l = ImageLimits::default();
        assert_eq!(grayscale(b"", &l).unwrap_err().status, 400);
        assert_eq!(grayscale(b"GIF89a garbage", &l).unwrap_err().status, 422);
        assert_eq!(grayscale(b"%PDF-1.4", &l).unwrap_err().status, 415);
        let png = encode(colourful(8, 8), ImageFormat::Png);
        assert_eq!(
            grayscale(&png[..png.len() - 20], &l).unwrap_err().status,
            422
        );
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(None), Encoding::Base64);
        assert_eq!(negotiate(Some("*/*")), Encoding::Base64);
        assert_eq!(negotiate(Some("text/html, image/png;q=0.9")), Encoding::Raw);
        assert_eq!(negotiate(Some("IMAGE/GIF")), Encoding::Raw);
    }
}
