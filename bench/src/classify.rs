//! The native classify pipeline of the bench's native full service: the
//! component's own core (decode, resize, top-k) built natively, and OpenVINO
//! from Rust loaded the way wasm-host's wasi-nn loads it (the same crate and
//! version: the model read from memory, compiled for CPU with no properties
//! set, one inference request per connection as the host keeps one per
//! instance). So the two differ only in where the code runs and how the
//! tensor reaches OpenVINO.

use crate::steps::Steps;
use image_api_classify::{INPUT_DIMS, Prediction, parse_labels, preprocess, top_k};
use openvino::{
    CompiledModel, Core, DeviceType, ElementType, InferRequest, PropertyKey, RwPropertyKey, Shape,
    Tensor,
};
use service_common::{ApiError, ImageLimits};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// The compiled graph and its labels, shared by every connection.
pub struct Model {
    compiled: Mutex<CompiledModel>,
    // Kept for the life of the graph, as wasi-nn's backend keeps its core.
    _core: Mutex<Core>,
    labels: Vec<String>,
}

fn ov(what: &str) -> impl Fn(openvino::InferenceError) -> String + '_ {
    move |e| format!("OpenVINO {what}: {e}")
}

impl Model {
    /// Loads `model.xml`, `model.bin` and `labels.txt` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| format!("{f}: {e}"));
        let (xml, weights) = (read("model.xml")?, read("model.bin")?);
        let labels = parse_labels(&String::from_utf8_lossy(&read("labels.txt")?))?;
        let mut core = Core::new().map_err(|e| format!("OpenVINO: {e}"))?;
        let shape = Shape::new(&[1, weights.len() as i64]).map_err(ov("shape"))?;
        let mut tensor = Tensor::new(ElementType::U8, &shape).map_err(ov("tensor"))?;
        tensor
            .get_raw_data_mut()
            .map_err(ov("tensor"))?
            .copy_from_slice(&weights);
        let model = core
            .read_model_from_buffer(&xml, Some(&tensor))
            .map_err(ov("read"))?;
        let compiled = core
            .compile_model(&model, DeviceType::CPU)
            .map_err(ov("compile"))?;
        Ok(Self {
            compiled: Mutex::new(compiled),
            _core: Mutex::new(core),
            labels,
        })
    }

    /// A new inference request (one per connection).
    pub fn request(&self) -> Result<InferRequest, String> {
        let mut compiled = self.compiled.lock().map_err(|_| "poisoned")?;
        compiled.create_infer_request().map_err(ov("request"))
    }

    /// The settings OpenVINO chose for the compiled graph (none are set,
    /// here or in wasi-nn): hint, streams, threads.
    pub fn settings(&self) -> String {
        let Ok(compiled) = self.compiled.lock() else {
            return String::new();
        };
        [
            ("hint", RwPropertyKey::HintPerformanceMode),
            ("streams", RwPropertyKey::NumStreams),
            ("threads", RwPropertyKey::InferenceNumThreads),
        ]
        .into_iter()
        .map(|(name, key)| {
            let value = compiled.get_property(&PropertyKey::Rw(key));
            format!("{name}={}", value.as_deref().unwrap_or("?"))
        })
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// Decode and resize, the tensor into OpenVINO, inference, top 5: each
    /// step timed into `steps`.
    pub fn classify(
        &self,
        request: &mut InferRequest,
        body: &[u8],
        steps: &Steps,
    ) -> Result<Vec<Prediction>, ApiError> {
        let unavailable = |e: String| ApiError::unavailable("the model", e);
        let t = Instant::now();
        let (_, img) = service_common::decode::decode(body, &ImageLimits::default())?;
        let input = preprocess(&img);
        let t = steps.record("preprocess", t);
        let dims: Vec<i64> = INPUT_DIMS.iter().map(|&d| i64::from(d)).collect();
        let shape = Shape::new(&dims)
            .map_err(ov("shape"))
            .map_err(unavailable)?;
        let mut tensor = Tensor::new(ElementType::U8, &shape)
            .map_err(ov("tensor"))
            .map_err(unavailable)?;
        tensor
            .get_raw_data_mut()
            .map_err(ov("tensor"))
            .map_err(unavailable)?
            .copy_from_slice(&input);
        request
            .set_tensor("images", &tensor)
            .map_err(ov("input"))
            .map_err(unavailable)?;
        let t = steps.record("handover", t);
        request.infer().map_err(ov("infer")).map_err(unavailable)?;
        let t = steps.record("inference", t);
        let output = request
            .get_output_tensor_by_index(0)
            .map_err(ov("output"))
            .map_err(unavailable)?;
        let data = output
            .get_raw_data()
            .map_err(ov("output"))
            .map_err(unavailable)?;
        let top = top_k(data, &self.labels, 5);
        steps.record("top-k", t);
        Ok(top)
    }
}
