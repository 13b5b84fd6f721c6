//! wasi-nn graphs: loaded once per process from the manifest's
//! `[[nn_graphs]]`, shared by every instance, each inference timed into the
//! host's metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use wasm_host::Capabilities;
use wasm_host::metrics::Metrics;
use wasmtime::{Result, format_err};
use wasmtime_wasi_nn::backend::{
    BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor,
};
use wasmtime_wasi_nn::{ExecutionContext, Graph, GraphRegistry, Tensor};

/// The graphs, loaded once per process; each instance gets cheap clones
/// (`Graph` is reference-counted), so a new instance pays no load.
#[derive(Clone, Default)]
pub struct SharedGraphs(HashMap<String, Graph>);

impl GraphRegistry for SharedGraphs {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.get(name)
    }
    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.0.get_mut(name)
    }
}

impl SharedGraphs {
    /// The same graphs, each inference timed into `metrics`.
    pub fn timed(self, metrics: &Arc<Metrics>) -> Self {
        let graphs = self
            .0
            .into_iter()
            .map(|(name, inner)| {
                let timed: Box<dyn BackendGraph> = Box::new(Timed {
                    inner,
                    metrics: metrics.clone(),
                });
                (name, Graph::from(timed))
            })
            .collect();
        Self(graphs)
    }
}

/// A graph, or an execution context, whose `compute` is timed.
struct Timed<T> {
    inner: T,
    metrics: Arc<Metrics>,
}

impl BackendGraph for Timed<Graph> {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let inner = self.inner.init_execution_context()?;
        let timed: Box<dyn BackendExecutionContext> = Box::new(Timed {
            inner,
            metrics: self.metrics.clone(),
        });
        Ok(ExecutionContext::from(timed))
    }
}

impl BackendExecutionContext for Timed<ExecutionContext> {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        BackendExecutionContext::set_input(&mut *self.inner, id, tensor)
    }
    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        BackendExecutionContext::get_output(&mut *self.inner, id)
    }
    fn compute(
        &mut self,
        inputs: Option<Vec<NamedTensor>>,
    ) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        let started = Instant::now();
        let out = BackendExecutionContext::compute(&mut *self.inner, inputs);
        self.metrics.nn_compute(started.elapsed());
        out
    }
}

pub fn load_graphs(caps: &Capabilities) -> Result<SharedGraphs> {
    let mut graphs = HashMap::new();
    for (format, dir) in &caps.nn_graphs {
        let started = Instant::now();
        let dir_s = dir
            .to_str()
            .ok_or_else(|| format_err!("{}: not UTF-8", dir.display()))?;
        let (_, registry) = wasmtime_wasi_nn::preload(&[(format.clone(), dir_s.to_string())])?;
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format_err!("{}: no folder name", dir.display()))?;
        let graph = registry
            .get(name)
            .ok_or_else(|| format_err!("{}: graph `{name}` did not load", dir.display()))?
            .clone();
        eprintln!(
            "wasm-host: loaded nn graph `{name}` ({format}) in {} ms, shared by every instance",
            started.elapsed().as_millis()
        );
        graphs.insert(name.to_string(), graph);
    }
    Ok(SharedGraphs(graphs))
}
