//! A whole read's worth of distribution frames decoded in one call: the
//! native twin of `erldist.protocol.frame_batch.FrameBatchDecoder`, with the
//! same caps, the same results and the same error messages.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyList};

use crate::decode::{into_pyerr, Decoder, Fail, Limits};

const PASS_THROUGH: u8 = 112;
const VERSION: u8 = 131;
const HEADER: u8 = 68;
const FRAGMENT_FIRST: u8 = 69;
const FRAGMENT_NEXT: u8 = 70;
/// 131, 69, SequenceId, FragmentId, NumberOfAtomCacheRefs
const FIRST_HEADER_SIZE: usize = 19;
/// 131, 70, SequenceId, FragmentId
const NEXT_HEADER_SIZE: usize = 18;
const COMPRESSED: u8 = 80;

/// What the compressed term at `pos` declares it inflates to (0: not compressed).
fn inflated(data: &[u8], pos: usize) -> u64 {
    match data.get(pos..pos + 5) {
        Some([COMPRESSED, size @ ..]) => u64::from(u32::from_be_bytes(size.try_into().expect("4 bytes"))),
        _ => 0,
    }
}

struct FramingRefs {
    no_payload: Py<PyAny>,
    undecodable: Py<PyAny>,
    remote_error: Py<PyAny>,
}

static FRAMING: GILOnceCell<FramingRefs> = GILOnceCell::new();

fn framing(py: Python<'_>) -> PyResult<&FramingRefs> {
    FRAMING.get_or_try_init(py, || {
        let module = py.import("erldist.protocol.framing")?;
        let errors = py.import("erldist.errors")?;
        Ok(FramingRefs {
            no_payload: module.getattr("NO_PAYLOAD")?.unbind(),
            undecodable: module.getattr("UndecodableMessage")?.unbind(),
            remote_error: errors.getattr("RemoteProtocolError")?.unbind(),
        })
    })
}

/// What one frame came to.
enum Outcome {
    Message(PyObject, PyObject),
    /// A fragment that does not complete its message.
    Pending,
    /// The terms could not be decoded; the stream is still in step.
    Undecodable(PyErr),
    /// A message costing more than the allowance, held back undecoded.
    Held(Box<Held>),
}

/// A message held back for a later call to decode (the pure `Deferred`):
/// `data` from `pos` holds its control term, or, once `control` is decoded,
/// its payload.
struct Held {
    data: Vec<u8>,
    pos: usize,
    version_byte: bool,
    price: u64,
    control: Option<PyObject>,
}

/// The last message's bytes up to its payload, and the control term they hold.
struct Known {
    offset: usize,
    prefix: Vec<u8>,
    control: PyObject,
}

struct Reassembly {
    next_id: u64,
    data: Vec<u8>,
}

/// `FrameDecoder(header_mode, limits, max_frame, max_fragment_sequences,
/// max_reassembly)`; `feed(data)` returns the messages `data` completes.
#[pyclass(module = "erldist_native")]
pub struct FrameDecoder {
    header_mode: bool,
    limits: Limits,
    limits_obj: PyObject,
    max_frame: u64,
    max_fragment_sequences: usize,
    max_reassembly: u64,
    pending: Vec<u8>,
    sequences: HashMap<u64, Reassembly>,
    buffered: u64,
    broken: Option<String>,
    /// What the last frame cost: its size, or that of the message it
    /// completed, plus what its compressed terms inflate to.
    price: u64,
    known: Option<Known>,
    held: Option<Box<Held>>,
}

fn hex_head(frame: &[u8]) -> String {
    if frame.is_empty() {
        return "nothing".to_owned();
    }
    frame.iter().take(2).map(|b| format!("{b:02x}")).collect()
}

#[pymethods]
impl FrameDecoder {
    #[new]
    pub fn build(
        py: Python<'_>,
        header_mode: bool,
        limits: PyObject,
        max_frame: u64,
        max_fragment_sequences: usize,
        max_reassembly: u64,
    ) -> PyResult<Self> {
        let parsed = Limits::from_py(Some(limits.bind(py)))?;
        Ok(FrameDecoder {
            header_mode,
            limits: parsed,
            limits_obj: limits,
            max_frame,
            max_fragment_sequences,
            max_reassembly,
            pending: Vec::new(),
            sequences: HashMap::new(),
            buffered: 0,
            broken: None,
            price: 0,
            known: None,
            held: None,
        })
    }

    /// Bytes held for incomplete fragmented messages.
    #[getter]
    fn buffered(&self) -> u64 {
        self.buffered
    }

    /// The `DecodeLimits` this decoder applies.
    #[getter]
    fn limits(&self, py: Python<'_>) -> PyObject {
        self.limits_obj.clone_ref(py)
    }

    /// What the message held back costs, else the size of the next whole
    /// frame waiting (0: none is complete).
    #[getter]
    fn next_cost(&self) -> u64 {
        if let Some(held) = &self.held {
            return held.price;
        }
        let source = &self.pending;
        let mut pos = 0;
        while source.len() - pos >= 4 && self.broken.is_none() {
            let length = u32::from_be_bytes(source[pos..pos + 4].try_into().expect("4 bytes"));
            let stop = pos + 4 + length as usize;
            if u64::from(length) > self.max_frame || stop > source.len() {
                return 0;
            }
            if length > 0 {
                return u64::from(length);
            }
            pos = stop;
        }
        0
    }

    /// Every message `data` completes, in order: `(control, payload)` tuples,
    /// `UndecodableMessage` instances for frames whose terms could not be
    /// decoded, and, last, a `RemoteProtocolError` instance if the stream
    /// broke (after which every call raises it). Once what it decoded has
    /// cost `budget` (`None`: no limit), the rest waits for a later call; a
    /// message costing more than the whole `budget` is held back undecoded
    /// until a call whose budget covers it (see `next_cost`).
    #[pyo3(signature = (data, budget=None))]
    fn feed<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyBytes>, budget: Option<u64>) -> PyResult<Bound<'py, PyList>> {
        if let Some(reason) = &self.broken {
            return Err(self.remote_error(py, reason.clone())?);
        }
        let out = PyList::empty(py);
        let fresh = data.as_bytes();
        let owned;
        let source: &[u8] = if self.pending.is_empty() {
            fresh
        } else {
            self.pending.extend_from_slice(fresh);
            owned = std::mem::take(&mut self.pending);
            &owned
        };
        let mut pos = 0;
        let mut spent: u64 = 0;
        if let Some(held) = self.held.take() {
            if budget.is_some_and(|budget| held.price > budget) {
                self.held = Some(held);
                self.pending = source.to_vec();
                return Ok(out);
            }
            spent = held.price;
            match self.finish(py, held) {
                Ok(Outcome::Message(control, payload)) => out.append((control, payload))?,
                Ok(Outcome::Undecodable(err)) => out.append(err.value(py))?,
                Ok(Outcome::Pending | Outcome::Held(_)) => unreachable!("a held message is decoded whole"),
                Err(reason) => {
                    out.append(self.break_with(py, reason)?)?;
                    return Ok(out);
                }
            }
        }
        while source.len() - pos >= 4 {
            let length = u32::from_be_bytes(source[pos..pos + 4].try_into().expect("4 bytes"));
            if u64::from(length) > self.max_frame {
                let reason = format!("{length}-byte frame is over the {}-byte cap", self.max_frame);
                out.append(self.break_with(py, reason)?)?;
                return Ok(out);
            }
            let stop = pos + 4 + length as usize;
            if stop > source.len() {
                break;
            }
            let frame = &source[pos + 4..stop];
            if frame.is_empty() {
                pos = stop;
                continue; // a tick
            }
            if budget.is_some_and(|budget| spent >= budget) {
                break;
            }
            pos = stop;
            self.price = frame.len() as u64;
            let outcome = self.frame(py, frame, budget);
            match outcome {
                Ok(Outcome::Held(held)) => {
                    self.held = Some(held);
                    break;
                }
                Ok(Outcome::Message(control, payload)) => out.append((control, payload))?,
                Ok(Outcome::Pending) => {}
                Ok(Outcome::Undecodable(err)) => out.append(err.value(py))?,
                Err(reason) => {
                    out.append(self.break_with(py, reason)?)?;
                    return Ok(out);
                }
            }
            spent = spent.saturating_add(self.price);
        }
        self.pending = source[pos..].to_vec();
        Ok(out)
    }
}

impl FrameDecoder {
    fn remote_error(&self, py: Python<'_>, reason: String) -> PyResult<PyErr> {
        let exc = framing(py)?.remote_error.bind(py).call1((reason,))?;
        Ok(PyErr::from_value(exc))
    }

    fn break_with<'py>(&mut self, py: Python<'py>, reason: String) -> PyResult<Bound<'py, PyAny>> {
        self.broken = Some(reason.clone());
        self.pending.clear();
        self.held = None;
        self.sequences.clear();
        self.buffered = 0;
        Ok(self.remote_error(py, reason)?.value(py).clone().into_any())
    }

    /// One frame (never a tick); `Err` is a broken stream.
    fn frame(&mut self, py: Python<'_>, frame: &[u8], allowance: Option<u64>) -> Result<Outcome, String> {
        if !self.header_mode {
            if frame[0] != PASS_THROUGH {
                return Err(format!("expected a pass-through frame (112), got {}", hex_head(frame)));
            }
            return self.terms(py, frame, 1, true, allowance);
        }
        if frame.len() < 3 || frame[0] != VERSION {
            return Err(format!("expected a distribution header (131,...), got {}", hex_head(frame)));
        }
        match frame[1] {
            HEADER => {
                check_no_atom_cache(frame[2])?;
                self.terms(py, frame, 3, false, allowance)
            }
            FRAGMENT_FIRST => self.first_fragment(py, frame, allowance),
            FRAGMENT_NEXT => self.next_fragment(py, frame, allowance),
            kind => Err(format!("unknown distribution header kind {kind}")),
        }
    }

    fn first_fragment(&mut self, py: Python<'_>, frame: &[u8], allowance: Option<u64>) -> Result<Outcome, String> {
        if frame.len() < FIRST_HEADER_SIZE {
            return Err("truncated first-fragment header".to_owned());
        }
        let (seq, frag) = fragment_ids(frame);
        check_no_atom_cache(frame[FIRST_HEADER_SIZE - 1])?;
        if frag == 0 {
            return Err(format!("sequence {seq:#x}: fragment id 0"));
        }
        if self.sequences.contains_key(&seq) {
            return Err(format!("sequence {seq:#x} restarted before its last fragment"));
        }
        if frag == 1 {
            return self.terms(py, frame, FIRST_HEADER_SIZE, false, allowance);
        }
        if self.sequences.len() >= self.max_fragment_sequences {
            return Err(format!("more than {} fragmented messages in flight", self.max_fragment_sequences));
        }
        let chunk = &frame[FIRST_HEADER_SIZE..];
        self.reserve(chunk.len())?;
        self.sequences.insert(seq, Reassembly { next_id: frag - 1, data: chunk.to_vec() });
        Ok(Outcome::Pending)
    }

    fn next_fragment(&mut self, py: Python<'_>, frame: &[u8], allowance: Option<u64>) -> Result<Outcome, String> {
        if frame.len() < NEXT_HEADER_SIZE {
            return Err("truncated fragment header".to_owned());
        }
        let (seq, frag) = fragment_ids(frame);
        let Some(expected) = self.sequences.get(&seq).map(|e| e.next_id) else {
            return Err(format!("fragment for unknown sequence {seq:#x}"));
        };
        if frag != expected {
            return Err(format!("sequence {seq:#x}: fragment {frag} arrived, expected {expected}"));
        }
        let chunk = &frame[NEXT_HEADER_SIZE..];
        self.reserve(chunk.len())?;
        let entry = self.sequences.get_mut(&seq).expect("checked above");
        entry.data.extend_from_slice(chunk);
        if frag > 1 {
            entry.next_id = frag - 1;
            return Ok(Outcome::Pending);
        }
        let done = self.sequences.remove(&seq).expect("checked above");
        self.buffered -= done.data.len() as u64;
        self.terms(py, &done.data, 0, false, allowance)
    }

    fn reserve(&mut self, size: usize) -> Result<(), String> {
        if self.buffered + size as u64 > self.max_reassembly {
            return Err(format!("fragmented messages would hold over {} bytes", self.max_reassembly));
        }
        self.buffered += size as u64;
        Ok(())
    }

    /// The control term and the payload term (or `NO_PAYLOAD`) filling
    /// `data`; held back (before the control term, or before the payload once
    /// its compressed size is known) when it costs more than `allowance`.
    fn terms(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        offset: usize,
        version_byte: bool,
        allowance: Option<u64>,
    ) -> Result<Outcome, String> {
        let skip = usize::from(version_byte);
        let over = |price: u64| allowance.is_some_and(|allowance| price > allowance);
        self.price = (data.len() - offset) as u64 + inflated(data, offset + skip);
        if over(self.price) {
            return Ok(self.hold(data, offset, version_byte, None));
        }
        let decoder = match Decoder::new(py, data, self.limits) {
            Ok(decoder) => decoder,
            Err(err) => return Ok(Outcome::Undecodable(err)),
        };
        let (control, end) = match &self.known {
            Some(known) if known.offset == offset && data.starts_with(&known.prefix) => {
                (known.control.clone_ref(py), known.prefix.len())
            }
            _ => match decoder.top(offset, version_byte) {
                Ok((control, end)) => {
                    if end < data.len() && control.bind(py).hash().is_ok() {
                        // Same bytes, same term: the next frame that starts
                        // with them gets this control object back, undecoded
                        // (see `DistDecoder._learn`). Only a hashable control
                        // (no list or map in it) is shared.
                        self.known = Some(Known { offset, prefix: data[..end].to_vec(), control: control.clone_ref(py) });
                    }
                    (control, end)
                }
                Err(fail) => return Ok(Outcome::Undecodable(undecodable(py, fail))),
            },
        };
        if end == data.len() {
            return Ok(match framing(py) {
                Ok(refs) => Outcome::Message(control, refs.no_payload.clone_ref(py)),
                Err(err) => Outcome::Undecodable(err),
            });
        }
        self.price += inflated(data, end + skip);
        if over(self.price) {
            return Ok(self.hold(data, end, version_byte, Some(control)));
        }
        payload_of(&decoder, py, control, (end, data.len()), version_byte)
    }

    fn hold(&self, data: &[u8], pos: usize, version_byte: bool, control: Option<PyObject>) -> Outcome {
        Outcome::Held(Box::new(Held { data: data.to_vec(), pos, version_byte, price: self.price, control }))
    }

    /// Decode the message `held` held back, whatever it costs.
    fn finish(&mut self, py: Python<'_>, held: Box<Held>) -> Result<Outcome, String> {
        let Held { data, pos, version_byte, control, .. } = *held;
        let Some(control) = control else {
            return self.terms(py, &data, pos, version_byte, None);
        };
        let decoder = match Decoder::new(py, &data, self.limits) {
            Ok(decoder) => decoder,
            Err(err) => return Ok(Outcome::Undecodable(err)),
        };
        payload_of(&decoder, py, control, (pos, data.len()), version_byte)
    }
}

/// The message of `control` and the payload at `pos`, which must end the
/// `size` bytes decoded.
fn payload_of(
    decoder: &Decoder<'_, '_>,
    py: Python<'_>,
    control: PyObject,
    (pos, size): (usize, usize),
    version_byte: bool,
) -> Result<Outcome, String> {
    match decoder.top(pos, version_byte) {
        Ok((payload, end)) => {
            if end != size {
                return Err(format!("{} bytes after the payload of a distribution message", size - end));
            }
            Ok(Outcome::Message(control, payload))
        }
        Err(fail) => Ok(Outcome::Undecodable(undecodable(py, fail))),
    }
}

fn fragment_ids(frame: &[u8]) -> (u64, u64) {
    let seq = u64::from_be_bytes(frame[2..10].try_into().expect("8 bytes"));
    let frag = u64::from_be_bytes(frame[10..18].try_into().expect("8 bytes"));
    (seq, frag)
}

fn check_no_atom_cache(refs: u8) -> Result<(), String> {
    if refs != 0 {
        return Err(format!("header references {refs} cached atoms, but no atom cache was negotiated"));
    }
    Ok(())
}

/// `UndecodableMessage("undecodable distribution message: ...")` caused by
/// the `DecodeError`, as the pure decoder raises it `from` the error.
fn undecodable(py: Python<'_>, fail: Fail) -> PyErr {
    let cause = into_pyerr(py, fail);
    let build = || -> PyResult<PyErr> {
        let cause_value = cause.value(py);
        let message = format!("undecodable distribution message: {}", cause_value.str()?);
        let exc = framing(py)?.undecodable.bind(py).call1((message,))?;
        exc.setattr("__cause__", cause_value)?;
        Ok(PyErr::from_value(exc))
    };
    match build() {
        Ok(err) => err,
        Err(err) => err,
    }
}
