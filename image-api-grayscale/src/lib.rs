//! image-api-grayscale: image in, grayscale image out.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /grayscale` | the image in grayscale, same size: base64 PNG text by default (the original template's format), raw bytes with `Accept: image/png` / `image/gif`; GIF in, GIF out (every frame) |
//! | `GET /healthz` | `{"status":"ok"}` |
//!
//! This file is the pure core (decode, convert, encode); `handler.rs` is the
//! wasi:http handler around it (its state calls and the event through the
//! outbox: service-common's `service/`). Its manifest is `service.toml`.

use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, Frame, ImageEncoder, ImageFormat, Rgba, RgbaImage};
use service_common::CodeDoc;
pub use service_common::{ApiError, ImageLimits, Problem};

/// Every error image-api-grayscale answers with.
#[derive(Debug)]
pub enum GrayscaleError {
    /// A shared error (bad input, limits, rate limit, state store).
    Api(ApiError),
    /// 500 `encode_failed`: our encoder failed on a decoded image.
    EncodeFailed {
        /// `PNG` or `GIF`.
        format: &'static str,
        /// The encoder's error, logged only.
        cause: String,
    },
}

impl From<ApiError> for GrayscaleError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl Problem for GrayscaleError {
    fn status(&self) -> u16 {
        match self {
            Self::Api(e) => e.status(),
            Self::EncodeFailed { .. } => 500,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Api(e) => e.code(),
            Self::EncodeFailed { .. } => "encode_failed",
        }
    }
    fn message(&self) -> String {
        match self {
            Self::Api(e) => e.message(),
            Self::EncodeFailed { format, .. } => {
                format!("the {format} result could not be encoded")
            }
        }
    }
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Api(e) => e.retry_after(),
            Self::EncodeFailed { .. } => None,
        }
    }
    fn cause(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.cause(),
            Self::EncodeFailed { cause, .. } => Some(cause),
        }
    }
}

/// The codes `POST /grayscale` answers, for the README table.
pub fn error_codes() -> Vec<CodeDoc> {
    // Plus the animated-GIF path (decode_gif_frames) and its own encoder.
    let mut rows = ApiError::docs(service_common::error::IMAGE_REQUEST_CODES);
    rows.extend(ApiError::docs(&["too_many_frames"]));
    rows.push(CodeDoc {
        status: 500,
        code: "encode_failed",
        when: "the result could not be encoded (a bug; the cause is in the log)",
    });
    rows
}

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
    let wants_raw = service_common::accept::asks_for(
        accept,
        &[
            "image/png",
            "image/gif",
            "image/*",
            "application/octet-stream",
        ],
    );
    if wants_raw {
        Encoding::Raw
    } else {
        Encoding::Base64
    }
}

/// Converts an uploaded image to grayscale. GIFs stay GIFs (all frames,
/// timing kept); everything else becomes PNG (alpha kept).
pub fn grayscale(bytes: &[u8], limits: &ImageLimits) -> Result<Grayscaled, GrayscaleError> {
    let info = service_common::decode::probe(bytes, limits)?;
    if info.format == ImageFormat::Gif {
        return grayscale_gif(bytes, limits, info);
    }
    if info.format == ImageFormat::Jpeg
        && let Some(gray) = jpeg_luma(bytes, limits)
    {
        return encode_png_gray(&gray);
    }
    let (_, img) = service_common::decode::decode(bytes, limits)?;
    if img.color().has_alpha() {
        let gray = to_gray_alpha(&img);
        let (width, height) = gray.dimensions();
        return encode_png(gray.as_raw(), width, height, image::ExtendedColorType::La8);
    }
    encode_png_gray(&to_gray(&img))
}

/// Fast deflate with the Paeth filter: measured on the sample photos, as
/// small as adaptive filtering and faster, natively and in wasm.
fn png_encoder(out: &mut Vec<u8>) -> PngEncoder<&mut Vec<u8>> {
    PngEncoder::new_with_quality(out, CompressionType::Fast, FilterType::Paeth)
}

fn encode_png_gray(gray: &image::GrayImage) -> Result<Grayscaled, GrayscaleError> {
    encode_png(
        gray.as_raw(),
        gray.width(),
        gray.height(),
        image::ExtendedColorType::L8,
    )
}

fn encode_png(
    raw: &[u8],
    width: u32,
    height: u32,
    color: image::ExtendedColorType,
) -> Result<Grayscaled, GrayscaleError> {
    let mut out = Vec::with_capacity(raw.len() / 2);
    png_encoder(&mut out)
        .write_image(raw, width, height, color)
        .map_err(|e| encode_failed("PNG", e))?;
    Ok(Grayscaled {
        bytes: out,
        format: ImageFormat::Png,
        width,
        height,
    })
}

/// A JPEG's luma plane is its grayscale image: decoding only that skips
/// chroma upsampling and colour conversion (about 2x faster). `None` when
/// this decoder cannot (CMYK, odd files): the generic path then decides.
fn jpeg_luma(bytes: &[u8], limits: &ImageLimits) -> Option<image::GrayImage> {
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let side = limits.max_side as usize;
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::Luma)
        .set_max_width(side)
        .set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(bytes), opts);
    let pixels = decoder.decode().ok()?;
    let info = decoder.info()?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    // One byte per pixel, or the decoder did not give us luma.
    if pixels.len() as u64 != u64::from(w) * u64::from(h) {
        return None;
    }
    image::GrayImage::from_raw(w, h, pixels)
}

fn grayscale_gif(
    bytes: &[u8],
    limits: &ImageLimits,
    info: service_common::decode::ImageInfo,
) -> Result<Grayscaled, GrayscaleError> {
    let frames = service_common::decode::decode_gif_frames(bytes, limits)?;
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(|e| encode_failed("GIF", e))?;
        let gray_frames = frames.into_iter().map(|f| {
            let (left, top, delay) = (f.left(), f.top(), f.delay());
            let mut buf: RgbaImage = f.into_buffer();
            gray_rgba_in_place(&mut buf);
            Frame::from_parts(buf, left, top, delay)
        });
        encoder
            .encode_frames(gray_frames)
            .map_err(|e| encode_failed("GIF", e))?;
    }
    Ok(Grayscaled {
        bytes: out,
        format: ImageFormat::Gif,
        width: info.width,
        height: info.height,
    })
}

/// BT.601 luma in fixed point (weights x 2^16, rounded): the Y that JPEG
/// stores, so JPEG and other inputs give the same gray; also what PIL and
/// OpenCV use.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((19595 * u32::from(r) + 38470 * u32::from(g) + 7471 * u32::from(b) + 32768) >> 16) as u8
}

/// Grayscale of an opaque image.
pub fn to_gray(img: &DynamicImage) -> image::GrayImage {
    if let DynamicImage::ImageLuma8(g) = img {
        return g.clone();
    }
    let rgb;
    let rgb = match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => {
            rgb = other.to_rgb8();
            &rgb
        }
    };
    let px = rgb
        .as_raw()
        .chunks_exact(3)
        .map(|p| luma(p[0], p[1], p[2]))
        .collect();
    image::GrayImage::from_raw(rgb.width(), rgb.height(), px).unwrap_or_default()
}

/// Grayscale keeping alpha.
pub fn to_gray_alpha(img: &DynamicImage) -> image::GrayAlphaImage {
    let rgba = img.to_rgba8();
    let px = rgba
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| [luma(p[0], p[1], p[2]), p[3]])
        .collect();
    image::GrayAlphaImage::from_raw(rgba.width(), rgba.height(), px).unwrap_or_default()
}

/// Gray in place, keeping alpha (GIF frames).
fn gray_rgba_in_place(buf: &mut RgbaImage) {
    for Rgba([r, g, b, _]) in buf.pixels_mut() {
        let y = luma(*r, *g, *b);
        (*r, *g, *b) = (y, y, y);
    }
}

/// An encoder failure is ours, not the client's: the cause goes to the
/// log, the answer says only what failed.
fn encode_failed(format: &'static str, e: impl std::fmt::Display) -> GrayscaleError {
    GrayscaleError::EncodeFailed {
        format,
        cause: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_lists_every_code() {
        let table = service_common::check_readme_table(env!("CARGO_MANIFEST_DIR"), &error_codes());
        table.unwrap_or_else(|e| panic!("{e}"));
    }
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
    fn jpeg_luma_fast_path_matches_generic_conversion() {
        let jpg = encode(colourful(40, 30), ImageFormat::Jpeg);
        let fast = jpeg_luma(&jpg, &ImageLimits::default()).expect("luma");
        let slow = to_gray(&image::load_from_memory(&jpg).expect("decode"));
        assert_eq!(fast.dimensions(), slow.dimensions());
        // Same picture: luma straight from the JPEG vs RGB converted back.
        let max_diff = fast
            .pixels()
            .zip(slow.pixels())
            .map(|(a, b)| a[0].abs_diff(b[0]))
            .max();
        assert!(max_diff.is_some_and(|d| d <= 12), "{max_diff:?}");
    }

    #[test]
    fn luma_weights() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(
            (luma(255, 0, 0), luma(0, 255, 0), luma(0, 0, 255)),
            (76, 150, 29)
        );
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
        assert_eq!(grayscale(b"", &l).unwrap_err().status(), 400);
        assert_eq!(grayscale(b"GIF89a garbage", &l).unwrap_err().status(), 422);
        assert_eq!(grayscale(b"%PDF-1.4", &l).unwrap_err().status(), 415);
        let png = encode(colourful(8, 8), ImageFormat::Png);
        assert_eq!(
            grayscale(&png[..png.len() - 20], &l).unwrap_err().status(),
            422
        );
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(None), Encoding::Base64);
        assert_eq!(negotiate(Some("*/*")), Encoding::Base64);
        assert_eq!(negotiate(Some("text/html, image/png;q=0.9")), Encoding::Raw);
        assert_eq!(negotiate(Some("IMAGE/GIF")), Encoding::Raw);
        assert_eq!(negotiate(Some("image/png;q=0")), Encoding::Base64);
    }
}
