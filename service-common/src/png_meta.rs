//! A PNG's compressed metadata, in bounded memory.
//!
//! The png decoder inflates an `iCCP` profile whole while it reads the
//! header (and `zTXt`/`iTXt` text on request), bounded only by the decode
//! limit: a 216 KB file whose profile inflates to 200 MB cost 400 MB. Before
//! any decoder sees a PNG, every compressed ancillary chunk is inflated into
//! a sink here, their sum capped at [`MAX_INFLATED_METADATA`] (a bomb is
//! refused), and then only the chunks that make the pixels are kept.

use crate::ApiError;
use std::borrow::Cow;
use std::io::Read as _;

/// Most bytes all of a PNG's compressed metadata chunks may inflate to,
/// together. Real ICC profiles are a few KB (the largest common ones about
/// 0.5 MB); text is smaller.
pub const MAX_INFLATED_METADATA: u64 = 1 << 20;

const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The chunks the pixels come from; everything else is metadata.
const KEPT: [&[u8; 4]; 5] = [b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"];

/// `bytes` with only the chunks that make the pixels, after checking that
/// its compressed metadata stays within [`MAX_INFLATED_METADATA`]. Not a
/// PNG, or a chunk list the decoder will refuse anyway: unchanged.
pub fn pixels_only(bytes: &[u8]) -> Result<Cow<'_, [u8]>, ApiError> {
    let Some(chunks) = bytes.strip_prefix(SIGNATURE).and_then(chunk_list) else {
        return Ok(Cow::Borrowed(bytes));
    };
    let mut inflated = 0u64;
    for &(kind, start, len) in &chunks {
        if let Some(stream) = compressed_part(kind, &bytes[start + 8..start + 8 + len]) {
            inflated += inflated_size(stream, MAX_INFLATED_METADATA + 1 - inflated);
            if inflated > MAX_INFLATED_METADATA {
                return Err(ApiError::ImageTooLarge(format!(
                    "compressed PNG metadata ({}) inflates past {} bytes",
                    String::from_utf8_lossy(&kind),
                    MAX_INFLATED_METADATA
                )));
            }
        }
    }
    if chunks.iter().all(|(kind, _, _)| KEPT.contains(&kind)) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(SIGNATURE);
    for &(kind, start, len) in &chunks {
        if KEPT.contains(&&kind) {
            out.extend_from_slice(&bytes[start..start + 12 + len]);
        }
    }
    Ok(Cow::Owned(out))
}

/// (type, offset of the chunk from the file's start, data length) of every
/// chunk, or `None` if a length runs past the end.
fn chunk_list(after_signature: &[u8]) -> Option<Vec<([u8; 4], usize, usize)>> {
    let mut chunks = Vec::new();
    let mut at = SIGNATURE.len();
    let file_len = SIGNATURE.len() + after_signature.len();
    let file = |i: usize| after_signature.get(i - SIGNATURE.len()..);
    while at < file_len {
        let head = file(at)?.get(..8)?;
        let len = u32::from_be_bytes(head[..4].try_into().ok()?) as usize;
        let kind: [u8; 4] = head[4..8].try_into().ok()?;
        if at.checked_add(12)?.checked_add(len)? > file_len {
            return None;
        }
        chunks.push((kind, at, len));
        at += 12 + len;
        if &kind == b"IEND" {
            break;
        }
    }
    Some(chunks)
}

/// The zlib stream inside a chunk that carries one.
fn compressed_part(kind: [u8; 4], data: &[u8]) -> Option<&[u8]> {
    match &kind {
        // keyword, 0, method, stream
        b"iCCP" | b"zTXt" => after_keyword(data).and_then(|d| d.get(1..)),
        // keyword, 0, flag, method, language, 0, translated keyword, 0, text
        b"iTXt" => {
            let rest = after_keyword(data)?;
            let (flag, rest) = (rest.first()?, rest.get(2..)?);
            let rest = after_keyword(after_keyword(rest)?)?;
            (*flag == 1).then_some(rest)
        }
        _ => None,
    }
}

/// What follows the first NUL (a chunk's keyword ends with one).
fn after_keyword(d: &[u8]) -> Option<&[u8]> {
    d.iter().position(|&b| b == 0).map(|i| &d[i + 1..])
}

/// Bytes `stream` inflates to, reading at most `cap` of them (into nothing).
/// A broken stream counts what it gave before breaking.
fn inflated_size(stream: &[u8], cap: u64) -> u64 {
    let mut counted = 0u64;
    let mut reader = flate2::read::ZlibDecoder::new(stream).take(cap);
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        counted += n as u64;
    }
    counted
}

/// Test files: a small valid PNG carrying a `kind` chunk (`iCCP`, `zTXt` or
/// `iTXt`) whose zlib stream inflates to `inflated_mib` MiB of zeros, the
/// way a compressor makes one (about 1 KB per MiB).
#[cfg(any(test, feature = "test-util"))]
pub fn png_with_metadata_bomb(kind: &[u8; 4], inflated_mib: u32) -> Vec<u8> {
    let stream = crate::decode::zlib_zeros(1 << 20, inflated_mib as usize);
    let mut data = match kind {
        b"iTXt" => b"XML:com.adobe.xmp\0\x01\x00\0\0".to_vec(),
        _ => b"bomb\0\x00".to_vec(),
    };
    data.extend_from_slice(&stream);
    crate::decode::tiny_png_with(&[(kind, &data)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_bombs_are_refused_without_inflating_them() {
        for kind in [b"iCCP", b"zTXt", b"iTXt"] {
            for mib in [2, 200] {
                let png = png_with_metadata_bomb(kind, mib);
                assert!(
                    png.len() < mib as usize * 2048 + 1024,
                    "{} bytes",
                    png.len()
                );
                let err = pixels_only(&png).expect_err("a bomb");
                assert!(matches!(err, ApiError::ImageTooLarge(_)), "{err:?}");
            }
        }
    }

    #[test]
    fn metadata_within_the_cap_is_dropped_and_the_pixels_kept() {
        let plain = crate::decode::tiny_png_with(&[]);
        assert!(matches!(pixels_only(&plain), Ok(Cow::Borrowed(_))));
        let small = crate::decode::tiny_png_with(&[(b"tEXt", b"Comment\0hello")]);
        let kept = pixels_only(&small).expect("fine");
        assert_eq!(&kept[..], &plain[..], "tEXt dropped, nothing else");
        let garbage = b"\x89PNG\r\n\x1a\n\0\0\xff\xffIHDR".to_vec();
        assert!(matches!(pixels_only(&garbage), Ok(Cow::Borrowed(_))));
        assert!(matches!(pixels_only(b"GIF89a"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn the_test_bomb_inflates_to_what_it_says() {
        let png = png_with_metadata_bomb(b"zTXt", 3);
        let chunks = chunk_list(&png[SIGNATURE.len()..]).expect("chunks");
        let (kind, start, len) = chunks[1];
        assert_eq!(&kind, b"zTXt");
        let stream = compressed_part(kind, &png[start + 8..start + 8 + len]).expect("z");
        assert_eq!(inflated_size(stream, u64::MAX), 3 << 20);
        let mut all = Vec::new();
        let read = flate2::read::ZlibDecoder::new(stream).read_to_end(&mut all);
        assert!(read.is_ok(), "a valid stream, checksum included: {read:?}");
    }
}
