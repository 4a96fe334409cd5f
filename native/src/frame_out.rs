//! Writing whole distribution frames: the length, the header, the control
//! term and the payload in one call, where the pure core makes one call per
//! term and patches the length in Python. The layout is `erldist/protocol/
//! framing.py`'s (`DistEncoder.frame_into`); the differential tests compare
//! both byte for byte.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::encode::{with_spare, Encoder};

/// Write four bytes for the length, then `head`, then run `body`, then fill
/// the length in. A frame too long for the four-byte length gets a wrong one:
/// the caller checks the size and refuses it before writing anything (as the
/// pure core does).
fn framed<'py>(
    py: Python<'py>,
    head: &[u8],
    body: impl FnOnce(&mut Encoder<'_, 'py>) -> PyResult<()>,
) -> PyResult<Bound<'py, PyBytes>> {
    with_spare(py, |encoder| {
        encoder.out.extend_from_slice(&[0, 0, 0, 0]);
        encoder.out.extend_from_slice(head);
        body(encoder)?;
        let length = u32::try_from(encoder.out.len() - 4).unwrap_or(u32::MAX);
        encoder.out[..4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    })
}

/// `frame(head, term)`: length ‖ head ‖ term. A control message without
/// a payload term, or a payload after a header kept from an earlier message
/// along the same route (everything before its payload).
#[pyfunction]
pub fn frame<'py>(py: Python<'py>, head: &[u8], term: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    framed(py, head, |encoder| encoder.encode(term, 0))
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
    framed(py, head, |encoder| {
        encoder.encode(control, 0)?;
        encoder.out.extend_from_slice(between);
        encoder.encode(payload, 0)
    })
}
