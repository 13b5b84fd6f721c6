//! Steps inside a component, in the trace of the request it is serving:
//! `let _s = span::step("db.insert");` records a span from here to the end
//! of the scope, a child of the host's span of the request (or of the step
//! around it). wasm-host records the request itself and every outbound
//! request on its own; steps are for work it cannot see, such as a database
//! write over a raw socket, or preprocessing before inference.
//!
//! Through wasm-host's `wasm-host:observe/span` (host/wit/observe.wit): a
//! component that uses it runs under wasm-host only. Built natively (the
//! unit tests) a step does nothing.

#[cfg(target_os = "wasi")]
mod bindings {
    wit_bindgen::generate!({
        path: "../host/wit/observe.wit",
        world: "guest",
    });
    pub use wasm_host::observe::span::{close, open, tag};
}

/// An open step; it ends when dropped.
#[must_use = "a step ends when dropped: bind it to a variable (`let _s = ...`)"]
pub struct Step(#[cfg_attr(not(target_os = "wasi"), allow(dead_code))] u32);

/// Opens a step named `name`: short and stable, such as `db.insert`, never
/// a value from a request (names group spans in the tracing UI).
pub fn step(name: &str) -> Step {
    #[cfg(target_os = "wasi")]
    return Step(bindings::open(name));
    #[cfg(not(target_os = "wasi"))]
    {
        let _ = name;
        Step(0)
    }
}

impl Step {
    /// Tags the step (`db.system = mysql`); nothing secret, the tags are
    /// shown to whoever can read traces.
    pub fn tag(&self, key: &str, value: &str) -> &Self {
        #[cfg(target_os = "wasi")]
        bindings::tag(self.0, key, value);
        #[cfg(not(target_os = "wasi"))]
        let _ = (key, value);
        self
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        #[cfg(target_os = "wasi")]
        bindings::close(self.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn natively_a_step_does_nothing() {
        let s = super::step("x");
        s.tag("k", "v").tag("k2", "v2");
        drop(s);
    }
}
