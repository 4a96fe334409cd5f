//! Writing whole distribution frames: the length, the header, the control
//! term and the payload in one call, where the pure core makes one call per
//! term and patches the length in Python. The layout is `erldist/protocol/
//! framing.py`'s (`DistEncoder.frame_into`); the differential tests compare
//! both byte for byte.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::encode::encode_append;

/// A frame under construction: four bytes for the length, then `head`.
fn start(head: &[u8], guess: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + head.len() + guess);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(head);
    out
}

/// The frame as `bytes`, its length filled in. A frame too long for the
/// four-byte length gets a wrong one: the caller checks the size and refuses
/// it before writing anything (as the pure core does).
fn finish<'py>(py: Python<'py>, mut out: Vec<u8>) -> Bound<'py, PyBytes> {
    let length = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&length.to_be_bytes());
    PyBytes::new_bound(py, &out)
}

/// `frame(head, term)`: length ‖ head ‖ term. A control message without
/// a payload term, or a payload after a header kept from an earlier message
/// along the same route (everything before its payload).
#[pyfunction]
pub fn frame<'py>(py: Python<'py>, head: &[u8], term: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = start(head, 64);
    encode_append(py, term, &mut out)?;
    Ok(finish(py, out))
}

/// `frame_message(head, control, between, payload)`: length ‖ head ‖
/// control ‖ between ‖ payload (`between` is the payload's version byte in
/// pass-through mode, nothing after a distribution header).
#[pyfunction]
pub fn frame_message<'py>(
    py: Python<'py>,
    head: &[u8],
    control: &Bound<'py, PyAny>,
    between: &[u8],
    payload: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = start(head, 112);
    encode_append(py, control, &mut out)?;
    out.extend_from_slice(between);
    encode_append(py, payload, &mut out)?;
    Ok(finish(py, out))
}
