//! `wasm-host:observe/span` (wit/observe.wit): a component's own steps in
//! the trace of the request it is serving, kept by the request's
//! `Recorder` (lib: recorder.rs). Outside a request (at instantiation)
//! there is no trace, and the calls do nothing.

use crate::runtime::Host;
use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/observe.wit",
        world: "guest",
    });
}

use bindings::wasm_host::observe::span;

impl span::Host for Host {
    fn open(&mut self, name: String) -> u32 {
        self.trace().map_or(0, |t| t.open(&name))
    }

    fn tag(&mut self, handle: u32, key: String, value: String) {
        if let Some(t) = self.trace() {
            t.tag(handle, &key, &value);
        }
    }

    fn close(&mut self, handle: u32) {
        if let Some(t) = self.trace() {
            t.close(handle);
        }
    }
}

/// Offers the interface to every component (one that does not import it
/// is unaffected).
pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    span::add_to_linker::<Host, HasSelf<Host>>(linker, |h| h)
}
