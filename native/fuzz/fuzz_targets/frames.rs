//! Any byte stream, cut in two, through the native batch frame decoder in both
//! modes: it must return a list (messages, dropped messages, at most one
//! broken-stream error, last) and never panic or raise anything but the
//! broken-stream error on the next call.
#![no_main]

mod common;

use erldist_native::frames::FrameDecoder;
use libfuzzer_sys::fuzz_target;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let cut = usize::from(data[0]) % data.len();
    let (head, tail) = data[1..].split_at(cut.min(data.len() - 1));
    Python::with_gil(|py| {
        let errors = py.import("erldist.errors").unwrap();
        let remote = errors.getattr("RemoteProtocolError").unwrap();
        for header_mode in [false, true] {
            let limits = common::small_limits(py).clone_ref(py);
            let decoder = Bound::new(py, FrameDecoder::build(py, header_mode, limits, 1 << 16, 4, 1 << 16).unwrap()).unwrap();
            let mut broken = false;
            for chunk in [head, tail] {
                let result = decoder.call_method1("feed", (PyBytes::new(py, chunk),));
                match result {
                    Err(err) => {
                        assert!(broken, "raised before the stream broke: {err}");
                        assert!(err.value(py).is_instance(&remote).unwrap());
                    }
                    Ok(items) => {
                        for item in items.try_iter().unwrap() {
                            let item = item.unwrap();
                            if item.is_instance(&remote).unwrap() {
                                let name = item.get_type().name().unwrap().to_string();
                                if name == "RemoteProtocolError" {
                                    broken = true;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
});
