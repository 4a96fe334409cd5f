//! Shared by the fuzz targets: the embedded interpreter, set up once.

use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;

static LIMITS: GILOnceCell<PyObject> = GILOnceCell::new();

/// Small caps, so the fuzzer reaches them instead of allocating gigabytes.
pub fn small_limits(py: Python<'_>) -> &PyObject {
    LIMITS.get_or_init(py, || {
        let module = py.import("erldist.term.decode").expect("erldist on PYTHONPATH");
        let class = module.getattr("DecodeLimits").expect("DecodeLimits");
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("max_elements", 20_000).unwrap();
        kwargs.set_item("max_binary_bytes", 1 << 20).unwrap();
        kwargs.set_item("max_inflated_bytes", 1 << 20).unwrap();
        class.call((), Some(&kwargs)).expect("limits").unbind()
    })
}

/// Only a `DecodeError` may come out of Python; anything else is a bug.
pub fn assert_decode_error(py: Python<'_>, err: &PyErr) {
    let errors = py.import("erldist.errors").expect("erldist.errors");
    let decode_error = errors.getattr("DecodeError").expect("DecodeError");
    assert!(err.value(py).is_instance(&decode_error).unwrap(), "unexpected exception: {err}");
}
