//! Turning untrusted bytes into pixels, in bounded memory.
//!
//! Order matters: sniff the format from magic bytes, read only the header to
//! learn the declared size, refuse decompression bombs, and only then decode
//! with the decoder's own allocation limit as a second fence.

use crate::{ApiError, ImageLimits};
use image::codecs::gif::GifDecoder;
use image::{AnimationDecoder, DynamicImage, Frame, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;

/// What the header says about an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// Detected format.
    pub format: ImageFormat,
    /// Declared width.
    pub width: u32,
    /// Declared height.
    pub height: u32,
}

/// Formats we accept.
pub const SUPPORTED: &[ImageFormat] = &[
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::Bmp,
    ImageFormat::WebP,
];

fn decoder_limits(limits: &ImageLimits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_alloc);
    l
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidImage(e.to_string())
}

/// Sniffs the format and checks the declared dimensions without decoding pixels.
pub fn probe(bytes: &[u8], limits: &ImageLimits) -> Result<ImageInfo, ApiError> {
    probe_pixels(&crate::png_meta::pixels_only(bytes)?, limits)
}

/// `probe` of bytes whose metadata is already dealt with.
fn probe_pixels(bytes: &[u8], limits: &ImageLimits) -> Result<ImageInfo, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::EmptyBody);
    }
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| SUPPORTED.contains(f))
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "not an image (expected PNG, JPEG, GIF, BMP or WebP)".into(),
            )
        })?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits(); // header only; limits are checked below with a clear error
    let (width, height) = reader.into_dimensions().map_err(map_decode_error)?;
    check_dimensions(width, height, limits)?;
    // JPEG decoders fill a cut-off image with gray instead of failing; the
    // end-of-image marker tells a whole file from a truncated one. (0xFF in
    // entropy-coded data is always followed by 0x00 or a restart marker, so
    // FF D9 cannot occur there by chance.) Searched from the end, where a
    // whole file has it: from the start it took 4% of a request in wasm.
    if format == ImageFormat::Jpeg && !bytes.windows(2).rev().any(|w| w == [0xFF, 0xD9]) {
        return Err(invalid("truncated JPEG (no end-of-image marker)"));
    }
    Ok(ImageInfo {
        format,
        width,
        height,
    })
}

/// Refuses empty or oversized declared dimensions.
pub fn check_dimensions(width: u32, height: u32, limits: &ImageLimits) -> Result<(), ApiError> {
    if width == 0 || height == 0 {
        return Err(invalid("zero width or height"));
    }
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ApiError::ImageTooLarge(format!(
            "image is {width}x{height}; the limit is {side}x{side} and {px} pixels",
            side = limits.max_side,
            px = limits.max_pixels
        )));
    }
    Ok(())
}

/// Probes, then decodes a still image (the first frame of a GIF).
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<(ImageInfo, DynamicImage), ApiError> {
    // A PNG's compressed metadata is checked and dropped first: the decoder
    // would inflate it whole (png_meta.rs).
    let bytes = crate::png_meta::pixels_only(bytes)?;
    let info = probe_pixels(&bytes, limits)?;
    let mut reader = ImageReader::with_format(Cursor::new(&bytes[..]), info.format);
    reader.limits(decoder_limits(limits));
    let img = reader.decode().map_err(map_decode_error)?;
    Ok((info, img))
}

/// Decodes every frame of a GIF, refusing more than `limits.max_frames`.
pub fn decode_gif_frames(bytes: &[u8], limits: &ImageLimits) -> Result<Vec<Frame>, ApiError> {
    let info = probe(bytes, limits)?;
    if info.format != ImageFormat::Gif {
        return Err(ApiError::UnsupportedMediaType("not a GIF".into()));
    }
    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(map_decode_error)?;
    decoder
        .set_limits(decoder_limits(limits))
        .map_err(map_decode_error)?;
    // Every decoded frame is a full canvas of RGBA: bound their sum too, or
    // a small GIF of many large frames would be a decompression bomb.
    let frame_pixels = u64::from(info.width) * u64::from(info.height);
    let mut frames = Vec::new();
    for frame in decoder.into_frames() {
        if frames.len() == limits.max_frames {
            return Err(ApiError::TooManyFrames {
                max: limits.max_frames,
            });
        }
        if (frames.len() as u64 + 1) * frame_pixels > limits.max_pixels {
            return Err(ApiError::ImageTooLarge(format!(
                "animated GIF frames exceed {} pixels in total",
                limits.max_pixels
            )));
        }
        frames.push(frame.map_err(map_decode_error)?);
    }
    if frames.is_empty() {
        return Err(invalid("GIF has no frames"));
    }
    Ok(frames)
}

/// (bit depth, colour type) of the test PNGs.
#[cfg(any(test, feature = "test-util"))]
const RGB8: [u8; 2] = [8, 2];
#[cfg(any(test, feature = "test-util"))]
const GRAY8: [u8; 2] = [8, 0];
#[cfg(any(test, feature = "test-util"))]
const RGBA16: [u8; 2] = [16, 6];

/// A decompression bomb for tests: a well-formed PNG signature and IHDR
/// chunk (valid CRC) declaring `width` x `height`, then one tiny IDAT.
/// Test code only: the crate's own tests, and others with `test-util`.
#[cfg(any(test, feature = "test-util"))]
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    png_with(
        width,
        height,
        RGB8,
        &[],
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    )
}

/// A zlib stream of `count` x `unit` zeros, as a compressor makes it (about
/// 1 KB per MiB), built in milliseconds: each unit is compressed once and
/// repeated. A sync flush ends each byte-aligned, and after the first unit
/// the window is all zeros, so the same blocks decode the same anywhere.
#[cfg(any(test, feature = "test-util"))]
pub fn zlib_zeros(unit: usize, count: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; unit];
    let mut z = Compress::new(Compression::best(), true);
    let mut stream = Vec::with_capacity(unit / 256 + 1024);
    let mut again = Vec::with_capacity(unit / 256 + 1024);
    let sync = FlushCompress::Sync;
    let ok = z.compress_vec(&zeros, &mut stream, sync).is_ok()
        && z.compress_vec(&zeros, &mut again, sync).is_ok();
    assert!(ok && z.total_in() == 2 * unit as u64, "deflate");
    for _ in 1..count {
        stream.extend_from_slice(&again);
    }
    stream.extend_from_slice(&[0x03, 0x00]); // the final block: empty
    let total = (unit as u64) * (count as u64);
    let adler = 1 | (((total % 65_521) as u32) << 16);
    stream.extend_from_slice(&adler.to_be_bytes());
    stream
}

/// The heaviest PNG for its size: `width` x `height` of 16-bit RGBA (8
/// bytes a pixel decoded), all zero, in a few hundred KB.
#[cfg(any(test, feature = "test-util"))]
pub fn heavy_png(width: u32, height: u32) -> Vec<u8> {
    let row = 1 + 8 * width as usize; // filter byte, then the pixels
    png_with(
        width,
        height,
        RGBA16,
        &[],
        &zlib_zeros(row, height as usize),
    )
}

/// A `width` x `height` 8-bit grayscale PNG of noise: it compresses to
/// nothing, so its grayscale answer is as large as the upload. Stored
/// (uncompressed) deflate blocks, so it is made quickly even unoptimized.
#[cfg(any(test, feature = "test-util"))]
pub fn noise_png(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut raw = Vec::with_capacity((width as usize + 1) * height as usize);
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    for _ in 0..height {
        // Filter byte "none", then the row.
        raw.extend(std::iter::once(0).chain((0..width).map(|_| next())));
    }
    let mut z = vec![0x78, 0x01];
    let blocks = raw.chunks(65_535);
    let last = blocks.len().saturating_sub(1);
    for (i, block) in blocks.enumerate() {
        z.push(u8::from(i == last));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    png_with(width, height, GRAY8, &[], &z)
}

/// A valid 1x1 RGB PNG with `extra` chunks between IHDR and IDAT.
#[cfg(any(test, feature = "test-util"))]
pub fn tiny_png_with(extra: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let idat = z
        .write_all(&[0, 200, 100, 50])
        .and_then(|()| z.finish())
        .unwrap_or_default();
    png_with(1, 1, RGB8, extra, &idat)
}

#[cfg(any(test, feature = "test-util"))]
fn png_with(
    width: u32,
    height: u32,
    [depth, color]: [u8; 2],
    extra: &[(&[u8; 4], &[u8])],
    idat: &[u8],
) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    push_chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in extra {
        push_chunk(&mut out, kind, data);
    }
    push_chunk(&mut out, b"IDAT", idat);
    push_chunk(&mut out, b"IEND", &[]);
    out
}

/// Appends one PNG chunk (length, type, data, CRC).
#[cfg(any(test, feature = "test-util"))]
pub fn push_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

fn map_decode_error(e: image::ImageError) -> ApiError {
    match e {
        image::ImageError::Limits(l) => {
            ApiError::ImageTooLarge(format!("image exceeds decoding limits: {l}"))
        }
        image::ImageError::Unsupported(u) => ApiError::UnsupportedMediaType(u.to_string()),
        other => invalid(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;
    use image::{ImageBuffer, Rgb};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    }

    #[test]
    fn rejects_empty_and_non_images() {
        let l = ImageLimits::default();
        assert_eq!(probe(b"", &l).unwrap_err().status(), 400);
        assert_eq!(
            probe(b"hello world, not an image", &l)
                .unwrap_err()
                .status(),
            415
        );
        assert_eq!(
            probe(b"<svg></svg>", &l).unwrap_err().code(),
            "unsupported_media_type"
        );
    }

    #[test]
    fn truncated_image_is_422() {
        let l = ImageLimits::default();
        let bytes = png(64, 64);
        let e = decode(&bytes[..bytes.len() / 2], &l).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "invalid_image"));
        // Only the signature: header unreadable.
        assert_eq!(probe(&bytes[..10], &l).unwrap_err().status(), 422);
    }

    #[test]
    fn declared_size_is_checked_before_decoding() {
        // A valid PNG header declaring 100000x100000, with no pixel data.
        let e = probe(&png_bomb(100_000, 100_000), &ImageLimits::default()).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "image_too_large"));
        let small = ImageLimits {
            max_pixels: 100,
            ..Default::default()
        };
        assert_eq!(
            decode(&png(11, 10), &small).unwrap_err().code(),
            "image_too_large"
        );
        assert!(decode(&png(10, 10), &small).is_ok());
        // Within limits but truncated pixel data: invalid, not a panic.
        assert_eq!(
            decode(&png_bomb(50, 50), &ImageLimits::default())
                .unwrap_err()
                .code(),
            "invalid_image"
        );
    }

    #[test]
    fn truncated_jpeg_is_422() {
        let mut out = Cursor::new(Vec::new());
        let img = DynamicImage::ImageRgb8(ImageBuffer::from_fn(64, 64, |x, y| {
            Rgb([x as u8, y as u8, 9])
        }));
        img.write_to(&mut out, ImageFormat::Jpeg).expect("encode");
        let jpg = out.into_inner();
        assert!(decode(&jpg, &ImageLimits::default()).is_ok());
        let e = decode(&jpg[..jpg.len() * 2 / 3], &ImageLimits::default()).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "invalid_image"));
    }

    #[test]
    fn gif_frames_are_bounded_in_number_and_total_pixels() {
        let frame = |c: u8| {
            Frame::new(image::RgbaImage::from_pixel(
                10,
                10,
                image::Rgba([c, 0, 0, 255]),
            ))
        };
        let mut gif = Vec::new();
        {
            let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
            enc.encode_frames((0..5).map(|i| frame(i * 40)))
                .expect("encode");
        }
        let l = ImageLimits::default();
        assert_eq!(decode_gif_frames(&gif, &l).expect("frames").len(), 5);
        let few = ImageLimits { max_frames: 4, ..l };
        assert_eq!(
            decode_gif_frames(&gif, &few).err().map(|e| e.code()),
            Some("too_many_frames")
        );
        let small = ImageLimits {
            max_pixels: 450,
            ..l
        };
        assert_eq!(
            decode_gif_frames(&gif, &small).err().map(|e| e.code()),
            Some("image_too_large")
        );
    }

    #[test]
    fn the_heavy_test_png_decodes_to_what_it_declares() {
        let png = heavy_png(300, 200);
        assert!(png.len() < 10_000, "{} bytes", png.len());
        let (info, img) = decode(&png, &ImageLimits::default()).expect("decodes");
        assert_eq!((info.width, info.height), (300, 200));
        assert_eq!(img.color(), image::ColorType::Rgba16);
    }

    #[test]
    fn the_noise_test_png_decodes() {
        let png = noise_png(300, 70_000 / 300, 7);
        let (info, img) = decode(&png, &ImageLimits::default()).expect("decodes");
        assert_eq!((info.width, info.height), (300, 233));
        assert_eq!(img.color(), image::ColorType::L8);
    }

    #[test]
    fn decodes_png() {
        let (info, img) = decode(&png(5, 3), &ImageLimits::default()).expect("decode");
        assert_eq!(
            (info.format, info.width, info.height),
            (ImageFormat::Png, 5, 3)
        );
        assert_eq!((img.width(), img.height()), (5, 3));
    }
}
