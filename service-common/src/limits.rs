//! Input limits, configurable through environment variables.

/// Limits applied to every uploaded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest request body in bytes (`MAX_BODY_BYTES`, default 10 MB).
    pub max_body_bytes: usize,
    /// Largest width and height in pixels (`MAX_IMAGE_SIDE`, default 8192).
    pub max_side: u32,
    /// Largest width × height (`MAX_IMAGE_PIXELS`, default 24 Mpx).
    pub max_pixels: u64,
    /// Most frames decoded from an animated GIF (`MAX_GIF_FRAMES`, default 100).
    pub max_frames: usize,
    /// Bytes the decoder may allocate (`MAX_DECODE_BYTES`, default 256 MiB).
    pub max_alloc: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1000 * 1000,
            max_side: 8192,
            max_pixels: 24_000_000,
            max_frames: 100,
            max_alloc: 256 * 1024 * 1024,
        }
    }
}

impl ImageLimits {
    /// Defaults overridden by whichever variables `lookup` knows; values that
    /// do not parse as positive integers keep the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let num = |k: &str| positive(&lookup, k);
        Self {
            max_body_bytes: num("MAX_BODY_BYTES").map_or(d.max_body_bytes, |v| v as usize),
            max_side: num("MAX_IMAGE_SIDE").map_or(d.max_side, |v| v.min(u32::MAX as u64) as u32),
            max_pixels: num("MAX_IMAGE_PIXELS").unwrap_or(d.max_pixels),
            max_frames: num("MAX_GIF_FRAMES").map_or(d.max_frames, |v| v as usize),
            max_alloc: num("MAX_DECODE_BYTES").unwrap_or(d.max_alloc),
        }
    }

    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// A positive integer from `lookup(key)`, or `None` (unset, not a number, zero).
pub fn positive(lookup: &impl Fn(&str) -> Option<String>, key: &str) -> Option<u64> {
    lookup(key)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_ignores_garbage() {
        let l = ImageLimits::from_lookup(|k| match k {
            "MAX_BODY_BYTES" => Some("1000".into()),
            "MAX_IMAGE_SIDE" => Some("-5".into()),
            "MAX_IMAGE_PIXELS" => Some("0".into()),
            _ => None,
        });
        assert_eq!(l.max_body_bytes, 1000);
        assert_eq!(l.max_side, ImageLimits::default().max_side);
        assert_eq!(l.max_pixels, ImageLimits::default().max_pixels);
    }
}
