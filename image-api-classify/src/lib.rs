//! image-api-classify: what is in the image, from an ImageNet model
//! (efficientnet-lite0, int8) run through wasi-nn.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /classify` | `"<label> is detected with N% confidence"` (text/plain); with `Accept: application/json` the top 5 `[{"label": ..., "score": ...}]`; a low best score says nothing was recognised with confidence |
//! | `GET /healthz` | `{"status":"ok","model_loaded":true}`, or 503 when the model cannot be loaded |
//!
//! This file is the pure core (preprocessing, top-k, wording); `handler.rs`
//! does the I/O and the inference.

use image::DynamicImage;
use image::imageops::FilterType;
use serde::Serialize;
use service_common::{ApiError, CodeDoc};

/// The codes `POST /classify` answers, for the README table: the shared
/// ones (classification adds none; a model that cannot run is `unavailable`).
pub fn error_codes() -> Vec<CodeDoc> {
    ApiError::docs(service_common::error::IMAGE_REQUEST_CODES)
}

/// The model's input is `INPUT_SIDE` x `INPUT_SIDE` RGB.
pub const INPUT_SIDE: u32 = 224;
/// Input tensor shape, NHWC.
pub const INPUT_DIMS: [u32; 4] = [1, INPUT_SIDE, INPUT_SIDE, 3];
/// The output is uint8 with this scale (from the model's quantization).
pub const OUTPUT_SCALE: f32 = 1.0 / 256.0;
/// Below this best score, the answer says nothing was recognised.
pub const MIN_CONFIDENCE: f32 = 0.15;

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// ImageNet label.
    pub label: String,
    /// Probability, 0 to 1.
    pub score: f32,
}

/// Resizes the whole image (no crop) to 224x224 RGB: the uint8 tensor the
/// model takes, values 0-255. Bilinear (triangle) convolution, with SIMD
/// from fast_image_resize (simd128 in wasm), the same filter as
/// `image::imageops::FilterType::Triangle`.
pub fn preprocess(img: &DynamicImage) -> Vec<u8> {
    use fast_image_resize::{self as fr, images::Image};
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    let resized = Image::from_vec_u8(w, h, rgb.into_raw(), fr::PixelType::U8x3).and_then(|src| {
        let mut dst = Image::new(INPUT_SIDE, INPUT_SIDE, fr::PixelType::U8x3);
        let opts = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
        fr::Resizer::new()
            .resize(&src, &mut dst, &opts)
            .map(|()| dst.into_vec())
            .map_err(|_| fr::ImageBufferError::InvalidBufferSize)
    });
    // Only a bug could make the SIMD path fail; fall back to the plain one.
    resized.unwrap_or_else(|_| {
        image::imageops::resize(&img.to_rgb8(), INPUT_SIDE, INPUT_SIDE, FilterType::Triangle)
            .into_raw()
    })
}

/// Parses the labels file: one label per line, 1000 of them.
pub fn parse_labels(text: &str) -> Result<Vec<String>, String> {
    let labels: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if labels.len() == 1000 {
        Ok(labels)
    } else {
        Err(format!("expected 1000 labels, found {}", labels.len()))
    }
}

/// The `k` best classes of a uint8 output, best first (ties: lower index first).
pub fn top_k(output: &[u8], labels: &[String], k: usize) -> Vec<Prediction> {
    let mut idx: Vec<usize> = (0..output.len().min(labels.len())).collect();
    idx.sort_by(|&a, &b| output[b].cmp(&output[a]).then(a.cmp(&b)));
    idx.into_iter()
        .take(k)
        .map(|i| Prediction {
            label: labels[i].clone(),
            score: f32::from(output[i]) * OUTPUT_SCALE,
        })
        .collect()
}

/// The answer sentence, as the original template phrased it.
pub fn sentence(top: &[Prediction]) -> String {
    match top.first() {
        Some(p) if p.score >= MIN_CONFIDENCE => {
            format!(
                "{} is detected with {}% confidence",
                p.label,
                (p.score * 100.0).round() as u32
            )
        }
        _ => "nothing was recognised with confidence".to_string(),
    }
}

/// True when the client asked for JSON.
pub fn wants_json(accept: Option<&str>) -> bool {
    service_common::accept::asks_for(accept, &["application/json"])
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

    fn labels() -> Vec<String> {
        (0..1000).map(|i| format!("class{i}")).collect()
    }

    #[test]
    fn preprocess_resizes_whole_image_to_rgb_224() {
        let img = DynamicImage::ImageRgb8(ImageBuffer::from_fn(451, 300, |x, _| {
            Rgb([if x < 225 { 255 } else { 0 }, 7, 9])
        }));
        let t = preprocess(&img);
        assert_eq!(t.len(), 224 * 224 * 3);
        // Left half red, right half not: the whole width was kept (no crop).
        assert_eq!(&t[..3], &[255, 7, 9]);
        let last = (224 * 224 - 1) * 3;
        assert_eq!(&t[last..last + 3], &[0, 7, 9]);
        // Gray and RGBA inputs become RGB.
        let gray = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(10, 10, image::Luma([100])));
        assert_eq!(&preprocess(&gray)[..3], &[100, 100, 100]);
    }

    #[test]
    fn top_k_orders_by_score_and_scales() {
        let mut out = vec![0u8; 1000];
        out[281] = 200;
        out[285] = 40;
        out[282] = 40;
        let top = top_k(&out, &labels(), 3);
        assert_eq!(
            top[0],
            Prediction {
                label: "class281".into(),
                score: 200.0 / 256.0
            }
        );
        assert_eq!(top[1].label, "class282"); // tie: lower index first
        assert_eq!(top[2].label, "class285");
        assert_eq!(top_k(&out, &labels(), 5).len(), 5);
    }

    #[test]
    fn wording() {
        let p = |s: f32| {
            vec![Prediction {
                label: "tabby".into(),
                score: s,
            }]
        };
        assert_eq!(sentence(&p(0.78)), "tabby is detected with 78% confidence");
        assert_eq!(sentence(&p(0.05)), "nothing was recognised with confidence");
        assert_eq!(sentence(&[]), "nothing was recognised with confidence");
        assert!(wants_json(Some("application/json")));
        assert!(!wants_json(Some("*/*")));
    }

    #[test]
    fn labels_file() {
        assert_eq!(parse_labels(&"x\n".repeat(1000)).map(|l| l.len()), Ok(1000));
        assert!(parse_labels("a\nb\n").is_err());
    }
}
