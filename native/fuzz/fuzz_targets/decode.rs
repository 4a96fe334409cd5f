//! Any bytes through the native term decoder, with and without a version byte:
//! it must return a term that ends inside the input, or a `DecodeError`
//! pointing inside it, and never panic, hang or raise anything else.
#![no_main]

mod common;

use erldist_native::decode::{Decoder, Fail, Limits};
use libfuzzer_sys::fuzz_target;
use pyo3::prelude::*;

fuzz_target!(|data: &[u8]| {
    Python::with_gil(|py| {
        let limits = Limits::from_py(Some(common::small_limits(py).bind(py))).expect("limits");
        let decoder = Decoder::new(py, data, limits).expect("erldist importable");
        for version_byte in [true, false] {
            match decoder.top(0, version_byte) {
                Ok((_, end)) => assert!(end <= data.len()),
                Err(Fail::At(offset, reason)) => {
                    assert!(offset <= data.len(), "offset {offset} past {} bytes", data.len());
                    assert!(!reason.is_empty());
                }
                Err(Fail::Py(err)) => common::assert_decode_error(py, &err),
                Err(Fail::Truncated) => panic!("a truncation escaped the decoder"),
            }
        }
    });
});
