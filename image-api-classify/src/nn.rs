//! Inference through wasi-nn (`wasi:nn@0.2.0-rc-2024-10-28`, as wasmtime 48
//! and 49 implement it). The WIT is vendored in `wit/` (its origin and checksum
//! are in its header), so the crate builds from a fresh clone.
//!
//! The graph is loaded once per process by wasm-host (`[[nn_graphs]]` in
//! service.toml) and found by name; graph, execution context and labels are
//! kept for the life of the instance (instance reuse).

wit_bindgen::generate!({
    path: "wit/wasi-nn.wit",
    world: "ml",
});

use image_api_classify::{INPUT_DIMS, parse_labels};
use std::cell::RefCell;
use wasi::nn::graph::{Graph, load_by_name};
use wasi::nn::inference::GraphExecutionContext;
use wasi::nn::tensor::{Tensor, TensorType};

/// The graph's name: the last component of the directory service.toml's
/// `[[nn_graphs]]` preloads.
const MODEL_NAME: &str = "efficientnet";

/// The labels, in the directory service.toml's `[[dirs]]` mounts at /model.
const LABELS_PATH: &str = "/model/labels.txt";

struct Model {
    // Kept alive for the context's sake.
    _graph: Graph,
    context: GraphExecutionContext,
    labels: Vec<String>,
}

thread_local! {
    static MODEL: RefCell<Option<Model>> = const { RefCell::new(None) };
}

fn nn_error(what: &str, e: wasi::nn::errors::Error) -> String {
    format!("{what}: {:?} {}", e.code(), e.data())
}

fn load() -> Result<Model, String> {
    let text =
        std::fs::read_to_string(LABELS_PATH).map_err(|e| format!("labels {LABELS_PATH}: {e}"))?;
    let labels = parse_labels(&text)?;
    let graph = load_by_name(MODEL_NAME).map_err(|e| nn_error("loading the graph", e))?;
    let context = graph
        .init_execution_context()
        .map_err(|e| nn_error("creating a context", e))?;
    Ok(Model {
        _graph: graph,
        context,
        labels,
    })
}

/// Loads the model if needed; `Err` says why it is unavailable.
pub fn ensure_loaded() -> Result<(), String> {
    MODEL.with(|m| {
        let mut m = m.borrow_mut();
        if m.is_none() {
            *m = Some(load()?);
        }
        Ok(())
    })
}

/// Runs the model on a preprocessed input; returns the raw uint8 output and
/// the labels.
pub fn infer(
    input: &[u8],
    f: impl FnOnce(&[u8], &[String]) -> Vec<image_api_classify::Prediction>,
) -> Result<Vec<image_api_classify::Prediction>, String> {
    ensure_loaded()?;
    MODEL.with(|m| {
        let m = m.borrow();
        let model = m.as_ref().ok_or("model not loaded")?;
        let tensor = Tensor::new(&INPUT_DIMS, TensorType::U8, input);
        let outputs = model
            .context
            .compute(vec![("images".to_string(), tensor)])
            .map_err(|e| nn_error("inference", e))?;
        let (_, output) = outputs
            .into_iter()
            .next()
            .ok_or("the model returned no output")?;
        Ok(f(&output.data(), &model.labels))
    })
}
