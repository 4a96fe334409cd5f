//! Native core of erldist: the External Term Format codec, the decoding of a
//! whole read's worth of distribution frames and the writing of whole frames,
//! for what runs per byte and per message. It builds the same Python objects as
//! the pure-Python core (the classes of `erldist.term.types`), writes the same
//! bytes and raises the same errors with the same offsets and reasons;
//! `tests/unit/test_core_differential.py` holds it to that.
//!
//! The crate has no `unsafe` code: every buffer it reads is an immutable
//! `bytes` object or a Rust-owned `Vec<u8>`.
#![forbid(unsafe_code)]

pub mod decode;
mod encode;
pub mod frames;
mod frame_out;
pub mod pyrefs;

use pyo3::prelude::*;

/// Bumped whenever the functions below change shape, so an `erldist` that
/// expects another shape falls back to the pure core instead of misbehaving.
const API_VERSION: u32 = 5;

#[pymodule]
fn erldist_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("API_VERSION", API_VERSION)?;
    m.add_function(wrap_pyfunction!(decode::decode, m)?)?;
    m.add_function(wrap_pyfunction!(decode::decode_prefix, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode_body, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode, m)?)?;
    m.add_function(wrap_pyfunction!(frame_out::frame, m)?)?;
    m.add_function(wrap_pyfunction!(frame_out::frame_message, m)?)?;
    m.add_class::<frames::FrameDecoder>()?;
    Ok(())
}
