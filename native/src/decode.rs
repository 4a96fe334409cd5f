//! The External Term Format decoder, a mirror of `erldist/term/decode.py`.
//!
//! Same structure as the pure one, so the two fail at the same offsets with
//! the same reasons: an explicit container stack (deep terms cost heap, not
//! stack), every declared length checked against the bytes left and against
//! the limits before anything is allocated. A read past the end is
//! `Fail::Truncated`, reported at the offset of the term being decoded, as the
//! pure decoder reports its `IndexError`s.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Mutex;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILProtected;
use pyo3::BoundObject;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::pyrefs::{refs, Refs};

const VERSION: u8 = 131;
const COMPRESSED: u8 = 80;
const MAX_ATOM_CHARS: usize = 255;
const MAX_ATOM_UTF8_BYTES: usize = 4 * MAX_ATOM_CHARS;
const MAX_REFERENCE_WORDS: usize = 5;
const ATOM_CACHE_SIZE: usize = 4096;
const COLLISION_CHECK_KEYS: usize = 64;
const MAX_SHARED_HASH: usize = 16;
/// Items decoded (tens of microseconds' work) between two chances for
/// another thread to take the interpreter: see `Decoder::body`.
const ITEMS_PER_TURN: u32 = 4096;

/// Why decoding stopped.
pub enum Fail {
    /// A `DecodeError(offset, reason)`.
    At(usize, String),
    /// Ran out of bytes; becomes "truncated term" at the current term's offset.
    Truncated,
    /// A Python exception raised on the way (passed through unchanged).
    Py(PyErr),
}

impl From<PyErr> for Fail {
    fn from(err: PyErr) -> Self {
        Fail::Py(err)
    }
}

type R<T> = Result<T, Fail>;

/// A Python int, float or bool made from a Rust value (which cannot fail).
fn small_obj<'py, T: IntoPyObject<'py, Error = Infallible>>(py: Python<'py>, value: T) -> PyObject {
    let Ok(object) = value.into_pyobject(py);
    object.into_any().unbind()
}

fn at<T>(offset: usize, reason: String) -> R<T> {
    Err(Fail::At(offset, reason))
}

/// `DecodeLimits`, with each cap saturated to what a Rust integer holds.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_depth: u64,
    pub max_elements: u64,
    pub max_binary_bytes: u64,
    pub max_bigint_bytes: u64,
    pub max_inflated_bytes: u64,
}

pub const DEFAULT_LIMITS: Limits = Limits {
    max_depth: 256,
    max_elements: 1_000_000,
    max_binary_bytes: 64 * 1024 * 1024,
    max_bigint_bytes: 4096,
    max_inflated_bytes: 64 * 1024 * 1024,
};

fn saturating_u64(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    match value.extract::<u64>() {
        Ok(v) => Ok(v),
        Err(_) if value.ge(0)? => Ok(u64::MAX),
        Err(err) => Err(err),
    }
}

impl Limits {
    pub fn from_py(limits: Option<&Bound<'_, PyAny>>) -> PyResult<Limits> {
        let Some(obj) = limits.filter(|o| !o.is_none()) else {
            return Ok(DEFAULT_LIMITS);
        };
        let py = obj.py();
        Ok(Limits {
            max_depth: saturating_u64(&obj.getattr(intern!(py, "max_depth"))?)?,
            max_elements: saturating_u64(&obj.getattr(intern!(py, "max_elements"))?)?,
            max_binary_bytes: saturating_u64(&obj.getattr(intern!(py, "max_binary_bytes"))?)?,
            max_bigint_bytes: saturating_u64(&obj.getattr(intern!(py, "max_bigint_bytes"))?)?,
            max_inflated_bytes: saturating_u64(&obj.getattr(intern!(py, "max_inflated_bytes"))?)?,
        })
    }
}

/// Let go of the interpreter and take it back (see `Decoder::body`); out of
/// line, so the loop that decodes small terms stays as it was.
#[cold]
#[inline(never)]
fn give_a_turn(py: Python<'_>) {
    py.allow_threads(|| ());
}

/// Turn a failure into the Python exception the pure decoder raises.
pub fn into_pyerr(py: Python<'_>, fail: Fail) -> PyErr {
    let (offset, reason) = match fail {
        Fail::Py(err) => return err,
        Fail::At(offset, reason) => (offset, reason),
        // Never escapes `body`; kept total rather than panicking.
        Fail::Truncated => (0, "truncated term".to_owned()),
    };
    match refs(py).and_then(|r| r.decode_error.bind(py).call1((offset, reason))) {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

// --- atoms -----------------------------------------------------------------------------

/// Decoded atoms by raw bytes, one table per encoding, bounded like the pure
/// decoder's: when full it is emptied. Only ever locked for a map operation,
/// never across a call into Python, so it cannot deadlock.
struct AtomCache {
    utf8: HashMap<Box<[u8]>, Py<PyAny>>,
    latin1: HashMap<Box<[u8]>, Py<PyAny>>,
}

static ATOMS: Mutex<Option<AtomCache>> = Mutex::new(None);

fn cached_atom(py: Python<'_>, raw: &[u8], latin1: bool) -> Option<PyObject> {
    let guard = ATOMS.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.as_ref()?;
    let table = if latin1 { &cache.latin1 } else { &cache.utf8 };
    table.get(raw).map(|v| v.clone_ref(py))
}

/// The atoms decoded last, one per slot chosen by a hash of the raw bytes:
/// a lookup is one short hash and one comparison, where the table above
/// costs a SipHash and a lock. A slot shared by two atoms holds the later;
/// the work per atom stays constant whatever a peer sends.
struct RecentAtom {
    raw: Box<[u8]>,
    latin1: bool,
    value: PyObject,
}

const RECENT_SLOTS: usize = 256;
static RECENT: GILProtected<RefCell<Vec<Option<RecentAtom>>>> = GILProtected::new(RefCell::new(Vec::new()));

fn recent_slot(raw: &[u8], latin1: bool) -> usize {
    // FNV-1a: a few instructions per byte; atoms are short.
    let mut hash: u32 = 0x811c_9dc5 ^ u32::from(latin1);
    for &byte in raw {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    (hash ^ (hash >> 16)) as usize % RECENT_SLOTS
}

fn recent_atom(py: Python<'_>, raw: &[u8], latin1: bool, slot: usize) -> Option<PyObject> {
    let slots = RECENT.get(py).borrow();
    match slots.get(slot) {
        Some(Some(recent)) if recent.latin1 == latin1 && *recent.raw == *raw => Some(recent.value.clone_ref(py)),
        _ => None,
    }
}

fn remember_recent(py: Python<'_>, raw: &[u8], latin1: bool, slot: usize, value: &PyObject) {
    let evicted = {
        let mut slots = RECENT.get(py).borrow_mut();
        if slots.is_empty() {
            slots.resize_with(RECENT_SLOTS, || None);
        }
        slots[slot].replace(RecentAtom { raw: raw.into(), latin1, value: value.clone_ref(py) })
    };
    // Dropped outside the borrow: releasing a Python object may run Python code.
    drop(evicted);
}

fn remember_atom(py: Python<'_>, raw: &[u8], latin1: bool, value: &PyObject) {
    let evicted;
    {
        let mut guard = ATOMS.lock().unwrap_or_else(|e| e.into_inner());
        let cache = guard.get_or_insert_with(|| AtomCache {
            utf8: HashMap::new(),
            latin1: HashMap::new(),
        });
        let table = if latin1 { &mut cache.latin1 } else { &mut cache.utf8 };
        evicted = if table.len() >= ATOM_CACHE_SIZE { std::mem::take(table) } else { HashMap::new() };
        table.insert(raw.into(), value.clone_ref(py));
    }
    // Dropped outside the lock: releasing Python objects may run Python code.
    drop(evicted);
}

fn refused(tag: u8) -> Option<&'static str> {
    Some(match tag {
        82 => "ATOM_CACHE_REF is only valid after a distribution header",
        121 => "LOCAL_EXT is node-local and never valid from another node",
        117 => "FUN_EXT was removed in OTP 23",
        COMPRESSED => "a compressed term may only appear at the top level",
        VERSION => "version byte 131 inside a term",
        _ => return None,
    })
}

/// `str(float)` as Python writes the values a decoder refuses.
fn py_float_text(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value > 0.0 {
        "inf".to_owned()
    } else {
        "-inf".to_owned()
    }
}

// --- containers on the stack -------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tuple,
    List,
    Map,
    Fun,
}

struct FunHead {
    start: usize,
    end: usize,
    module: PyObject,
    arity: u8,
    index: u32,
    uniq: [u8; 16],
}

enum Extra {
    Start(usize),
    Fun(FunHead),
}

struct Open {
    kind: Kind,
    items: Vec<PyObject>,
    want: usize,
    extra: Extra,
}

/// The allocations a decoding pass needs (its stack of open containers and
/// their item vectors), kept from one pass to the next so a small term costs
/// no allocation. A pass takes them out of `SCRATCH` and puts them back
/// when it ends; a nested pass (a compressed term inside) finds it empty
/// and allocates its own.
#[derive(Default)]
struct Scratch {
    stack: Vec<Option<Open>>,
    items: Vec<Vec<PyObject>>,
}

static SCRATCH: GILProtected<RefCell<Scratch>> =
    GILProtected::new(RefCell::new(Scratch { stack: Vec::new(), items: Vec::new() }));
/// Item vectors kept, and the largest capacity kept.
const SCRATCH_VECS: usize = 32;
const SCRATCH_VEC_ITEMS: usize = 1024;

/// One decoding pass over one buffer.
pub struct Decoder<'a, 'py> {
    py: Python<'py>,
    refs: &'a Refs,
    data: &'a [u8],
    limits: Limits,
}

impl<'a, 'py> Decoder<'a, 'py> {
    pub fn new(py: Python<'py>, data: &'a [u8], limits: Limits) -> PyResult<Self> {
        Ok(Decoder { py, refs: refs(py)?, data, limits })
    }

    fn u8(&self, pos: usize) -> R<u8> {
        self.data.get(pos).copied().ok_or(Fail::Truncated)
    }

    fn array<const N: usize>(&self, pos: usize) -> R<[u8; N]> {
        match self.data.get(pos..pos + N) {
            Some(slice) => Ok(slice.try_into().expect("slice of length N")),
            None => Err(Fail::Truncated),
        }
    }

    fn u16(&self, pos: usize) -> R<u16> {
        Ok(u16::from_be_bytes(self.array(pos)?))
    }

    fn u32(&self, pos: usize) -> R<u32> {
        Ok(u32::from_be_bytes(self.array(pos)?))
    }

    /// A term at `pos`, maybe compressed, maybe after a version byte; returns
    /// it and the offset just past it. The pure `_decode_top`.
    pub fn top(&self, mut pos: usize, version_byte: bool) -> R<(PyObject, usize)> {
        let data = self.data;
        if version_byte {
            if pos >= data.len() {
                return at(pos, "truncated: no version byte".to_owned());
            }
            if data[pos] != VERSION {
                return at(pos, format!("expected version byte {VERSION}, got {}", data[pos]));
            }
            pos += 1;
        }
        if pos < data.len() && data[pos] == COMPRESSED {
            return self.compressed(pos);
        }
        self.body(pos)
    }

    /// Tag 80: inflated by the pure core's `_inflate` (Python's zlib, so its
    /// messages match), then decoded here.
    fn compressed(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let whole = PyBytes::new(py, self.data);
        let result = self.refs.inflate.bind(py).call1((whole, pos, self.limits.max_inflated_bytes))?;
        let (inflated, end): (Bound<'_, PyBytes>, usize) = result.extract()?;
        let inner = Decoder { py, refs: self.refs, data: inflated.as_bytes(), limits: self.limits };
        let want = inner.data.len();
        let (term, used) = match inner.body(0) {
            Ok(done) => done,
            Err(Fail::At(offset, reason)) => {
                return at(pos, format!("inside compressed term at byte {offset}: {reason}"))
            }
            Err(other) => return Err(other),
        };
        if used != want {
            return at(pos, format!("{} trailing bytes inside compressed term", want - used));
        }
        Ok((term, end))
    }

    /// Decode the term whose tag is at `pos`: the heart of the decoder.
    ///
    /// A huge term (a million-element list takes tens of milliseconds) lets
    /// go of the interpreter every `ITEMS_PER_TURN` items and takes it back:
    /// CPython gives no thread the lock while native code runs, so without
    /// this the event loop could not answer a tick or a ping until the term
    /// is built, even when a worker thread decodes it. A thread that asked
    /// for the lock gets it then (the GIL's forced switching makes this
    /// thread wait until it has); when none asks, it costs a lock round-trip.
    /// Every buffer read here is immutable `bytes` or owned by the caller,
    /// so other threads running meanwhile cannot change what is decoded.
    pub fn body(&self, pos: usize) -> R<(PyObject, usize)> {
        if !matches!(self.data.get(pos), Some(104 | 105 | 108 | 112 | 116)) {
            // Not a container: nothing to allocate, nothing to keep.
            return self.body_on(pos, &mut Scratch::default());
        }
        let mut scratch = SCRATCH.get(self.py).take();
        let result = self.body_on(pos, &mut scratch);
        scratch.stack.clear(); // open containers left by an error
        let previous = SCRATCH.get(self.py).replace(scratch);
        drop(previous); // empty vectors at most: no Python code runs
        result
    }

    fn body_on(&self, mut pos: usize, scratch: &mut Scratch) -> R<(PyObject, usize)> {
        let mut open: Option<Open> = None;
        let mut budget: i128 = self.limits.max_elements.into();
        let mut depth: u64 = 0;
        let mut until_turn = ITEMS_PER_TURN;
        loop {
            until_turn -= 1;
            if until_turn == 0 {
                until_turn = ITEMS_PER_TURN;
                give_a_turn(self.py);
            }
            let start = pos;
            let step = self.item(&mut pos, start, &mut open, scratch, &mut budget, &mut depth);
            let mut value = match step {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(Fail::Truncated) => return at(start, "truncated term".to_owned()),
                Err(other) => return Err(other),
            };
            // A complete value: hand it to the open container, closing every
            // container it completes.
            loop {
                let Some(current) = open.as_mut() else {
                    return Ok((value, pos));
                };
                current.items.push(value);
                if current.items.len() < current.want {
                    break;
                }
                let done = open.take().expect("open container");
                value = self.finish(done, pos, &mut scratch.items)?;
                open = scratch.stack.pop().expect("stack holds the outer container");
                depth -= 1;
            }
        }
    }

    /// One tag: `Some(value)` for a complete value, `None` when a container
    /// was opened (or a list tail merged into the open list).
    fn item(
        &self,
        pos: &mut usize,
        start: usize,
        open: &mut Option<Open>,
        scratch: &mut Scratch,
        budget: &mut i128,
        depth: &mut u64,
    ) -> R<Option<PyObject>> {
        let py = self.py;
        let data = self.data;
        let size = data.len();
        let tag = self.u8(*pos)?;
        let value: PyObject = match tag {
            119 => {
                let (value, end) = self.atom(*pos)?;
                *pos = end;
                value
            }
            97 => {
                let value = self.u8(*pos + 1)?;
                *pos += 2;
                small_obj(py, value)
            }
            104 | 105 | 108 | 116 | 112 => {
                let mut extra = Extra::Start(start);
                let (kind, count, want);
                if tag == 104 {
                    count = usize::from(self.u8(*pos + 1)?);
                    *pos += 2;
                    (kind, want) = (Kind::Tuple, count);
                } else if tag == 112 {
                    let (head, num_free, after) = self.fun_header(*pos)?;
                    *pos = after;
                    count = num_free as usize;
                    (kind, want) = (Kind::Fun, count);
                    if count > head.end - *pos {
                        return at(start, format!("fun declares {count} free variables past its end"));
                    }
                    extra = Extra::Fun(head);
                } else {
                    count = self.u32(*pos + 1)? as usize;
                    *pos += 5;
                    if tag == 105 {
                        (kind, want) = (Kind::Tuple, count);
                    } else if tag == 108 {
                        if let Some(list) = open.as_mut() {
                            if list.kind == Kind::List && list.items.len() == list.want - 1 {
                                // The tail of the open list is a list: the same
                                // list goes on, linear and off the depth count.
                                if count >= size - *pos {
                                    return at(
                                        start,
                                        format!("{count} elements declared, {} bytes remain", size - *pos),
                                    );
                                }
                                *budget -= count as i128;
                                if *budget < 0 {
                                    return at(start, self.too_many());
                                }
                                list.want += count;
                                return Ok(None);
                            }
                        }
                        (kind, want) = (Kind::List, count + 1);
                    } else {
                        (kind, want) = (Kind::Map, 2 * count);
                    }
                }
                if want == 0 {
                    match kind {
                        Kind::Tuple => PyTuple::empty(py).into_any().unbind(),
                        Kind::Map => PyDict::new(py).into_any().unbind(),
                        _ => match extra {
                            Extra::Fun(head) => self.finish_fun(head, Vec::new(), *pos)?,
                            Extra::Start(_) => unreachable!("a fun always carries its header"),
                        },
                    }
                } else {
                    if want > size - *pos {
                        return at(start, format!("{count} elements declared, {} bytes remain", size - *pos));
                    }
                    *budget -= want as i128;
                    if *budget < 0 {
                        return at(start, self.too_many());
                    }
                    if *depth >= self.limits.max_depth {
                        return at(start, format!("term nests deeper than {}", self.limits.max_depth));
                    }
                    *depth += 1;
                    let items = scratch.items.pop().unwrap_or_else(|| Vec::with_capacity(want.min(64)));
                    let outer = open.replace(Open { kind, items, want, extra });
                    scratch.stack.push(outer);
                    return Ok(None);
                }
            }
            106 => {
                *pos += 1;
                PyList::empty(py).into_any().unbind()
            }
            109 => {
                let length = self.u32(*pos + 1)?;
                *pos += 5;
                if u64::from(length) > self.limits.max_binary_bytes {
                    return at(
                        start,
                        format!("binary of {length} bytes exceeds the {} cap", self.limits.max_binary_bytes),
                    );
                }
                let end = *pos + length as usize;
                if end > size {
                    return at(start, format!("binary declares {length} bytes, {} remain", size - *pos));
                }
                let value = PyBytes::new(py, &data[*pos..end]).into_any().unbind();
                *pos = end;
                value
            }
            98 => {
                let value = i32::from_be_bytes(self.array(*pos + 1)?);
                *pos += 5;
                small_obj(py, value)
            }
            107 => {
                let length = self.u16(*pos + 1)?;
                *pos += 3;
                let end = *pos + usize::from(length);
                if end > size {
                    return at(start, format!("string declares {length} bytes, {} remain", size - *pos));
                }
                *budget -= i128::from(length);
                if *budget < 0 {
                    return at(start, self.too_many());
                }
                let value = PyList::new(py, data[*pos..end].iter().copied())?.into_any().unbind();
                *pos = end;
                value
            }
            _ => {
                let (value, end) = self.rare(tag, *pos)?;
                *pos = end;
                value
            }
        };
        Ok(Some(value))
    }

    fn too_many(&self) -> String {
        format!("term has more than {} elements", self.limits.max_elements)
    }

    /// The tags the pure decoder sends through its dispatch table.
    fn rare(&self, tag: u8, pos: usize) -> R<(PyObject, usize)> {
        match tag {
            118 | 100 | 115 => self.atom(pos),
            70 => self.new_float(pos),
            99 => self.old_float(pos),
            110 | 111 => self.big(pos),
            77 => self.bit_binary(pos),
            88 | 103 => self.pid(pos),
            89 | 120 | 102 => self.port(pos),
            90 | 114 => self.reference(pos),
            101 => self.old_reference(pos),
            113 => self.export(pos),
            _ => at(pos, refused(tag).map_or_else(|| format!("unknown tag {tag}"), str::to_owned)),
        }
    }

    /// The value of a complete container; its item vector goes back to `spare`.
    fn finish(&self, done: Open, pos: usize, spare: &mut Vec<Vec<PyObject>>) -> R<PyObject> {
        let py = self.py;
        let Open { kind, mut items, extra, .. } = done;
        let value = match kind {
            Kind::Tuple => PyTuple::new(py, items.drain(..))?.into_any().unbind(),
            Kind::List => self.finish_list(&mut items)?,
            Kind::Map => match extra {
                Extra::Start(start) => self.finish_map(&mut items, start)?,
                Extra::Fun(_) => unreachable!("a map carries its start"),
            },
            Kind::Fun => match extra {
                Extra::Fun(head) => self.finish_fun(head, std::mem::take(&mut items), pos)?,
                Extra::Start(_) => unreachable!("a fun always carries its header"),
            },
        };
        items.clear();
        if items.capacity() <= SCRATCH_VEC_ITEMS && spare.len() < SCRATCH_VECS {
            spare.push(items);
        }
        Ok(value)
    }

    /// A list from its elements and its tail (the last item).
    fn finish_list(&self, items: &mut Vec<PyObject>) -> R<PyObject> {
        let py = self.py;
        let tail = items.pop().expect("a list has its tail");
        let tail = tail.bind(py);
        if let Ok(tail_list) = tail.downcast_exact::<PyList>() {
            // [] for a proper list, or another encoder's STRING_EXT as the tail.
            let all: Vec<Bound<'_, PyAny>> =
                items.drain(..).map(|o| o.into_bound(py)).chain(tail_list.iter()).collect();
            return Ok(PyList::new(py, all)?.into_any().unbind());
        }
        if items.is_empty() {
            // LIST_EXT with no elements is just its tail, as in OTP.
            return Ok(tail.clone().unbind());
        }
        let head = PyTuple::new(py, items.drain(..))?;
        Ok(self.refs.improper_list.bind(py).call1((head, tail))?.unbind())
    }

    /// A dict from key, value, key, value...; duplicate keys are refused.
    fn finish_map(&self, items: &mut Vec<PyObject>, start: usize) -> R<PyObject> {
        let py = self.py;
        let mut keys: Vec<Bound<'py, PyAny>> = Vec::with_capacity(items.len() / 2);
        let mut values: Vec<PyObject> = Vec::with_capacity(items.len() / 2);
        let mut pairs = items.drain(..);
        while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
            keys.push(k.into_bound(py));
            values.push(v);
        }
        let dict = match self.build_map(&keys, &values, start) {
            Err(Fail::Py(err)) if err.is_instance_of::<PyTypeError>(py) => {
                // A key holds a list or a map: use the hashable twins.
                let freeze = self.refs.freeze.bind(py);
                let frozen = keys.iter().map(|k| freeze.call1((k,))).collect::<PyResult<Vec<_>>>()?;
                self.build_map(&frozen, &values, start)?
            }
            other => other?,
        };
        if dict.len() != keys.len() {
            return at(
                start,
                "map has duplicate keys (or keys Python treats as equal, like 1, 1.0 and true)".to_owned(),
            );
        }
        Ok(dict.into_any().unbind())
    }

    fn build_map(&self, keys: &[Bound<'py, PyAny>], values: &[PyObject], start: usize) -> R<Bound<'py, PyDict>> {
        if keys.len() > COLLISION_CHECK_KEYS {
            self.refuse_hash_flooding(keys, start)?;
        }
        let dict = PyDict::new(self.py);
        for (key, value) in keys.iter().zip(values) {
            dict.set_item(key, value)?;
        }
        Ok(dict)
    }

    /// Keys of ints, floats and tuples hash alike on purpose-built input, and
    /// would make building the dict quadratic.
    fn refuse_hash_flooding(&self, keys: &[Bound<'py, PyAny>], start: usize) -> R<()> {
        let hashes = keys.iter().map(|k| k.hash()).collect::<PyResult<Vec<isize>>>()?;
        let distinct: HashSet<isize> = hashes.iter().copied().collect();
        if distinct.len() == hashes.len() {
            return Ok(());
        }
        let mut counts: HashMap<isize, usize> = HashMap::new();
        for h in hashes {
            *counts.entry(h).or_default() += 1;
        }
        if counts.values().copied().max().unwrap_or(0) > MAX_SHARED_HASH {
            return at(
                start,
                format!("more than {MAX_SHARED_HASH} map keys share one hash (a hash-flooding attempt)"),
            );
        }
        Ok(())
    }

    /// NEW_FUN_EXT up to its free variables: the header, NumFree, and the
    /// offset of the first free variable.
    fn fun_header(&self, pos: usize) -> R<(FunHead, u32, usize)> {
        let start = pos;
        let head: [u8; 29] = self.array(pos + 1)?;
        let size = u32::from_be_bytes(head[0..4].try_into().expect("4 bytes"));
        let arity = head[4];
        let uniq: [u8; 16] = head[5..21].try_into().expect("16 bytes");
        let index = u32::from_be_bytes(head[21..25].try_into().expect("4 bytes"));
        let num_free = u32::from_be_bytes(head[25..29].try_into().expect("4 bytes"));
        let end = pos + 1 + size as usize;
        if end > self.data.len() {
            return at(start, format!("fun declares {size} bytes but {} remain", self.data.len() - pos - 1));
        }
        let (module, mut p) = self.name_atom(pos + 30)?;
        for _ in 0..2 {
            // OldIndex, OldUniq
            match self.u8(p)? {
                97 => p += 2,
                98 => p += 5,
                tag => return at(p, format!("fun field must be an integer, got tag {tag}")),
            }
        }
        let tag = self.u8(p)?;
        if tag != 88 && tag != 103 {
            return at(p, format!("fun creator must be a pid, got tag {tag}"));
        }
        let (_, p) = self.pid(p)?;
        if p > end {
            return at(start, "fun header runs past its declared size".to_owned());
        }
        Ok((FunHead { start, end, module, arity, index, uniq }, num_free, p))
    }

    fn finish_fun(&self, head: FunHead, free: Vec<PyObject>, pos: usize) -> R<PyObject> {
        let py = self.py;
        let FunHead { start, end, module, arity, index, uniq } = head;
        if pos != end {
            return at(start, format!("fun declares {} bytes but holds {}", end - start - 1, pos - start - 1));
        }
        let raw = PyBytes::new(py, &self.data[start..end]);
        let args = (raw, module, arity, index, PyBytes::new(py, &uniq), PyTuple::new(py, free)?);
        Ok(self.refs.fun.bind(py).call1(args)?.unbind())
    }

    // --- atoms ---------------------------------------------------------------------------

    /// Any of the four atom tags at `pos`.
    fn atom(&self, pos: usize) -> R<(PyObject, usize)> {
        let tag = self.u8(pos)?;
        let (length, first) = match tag {
            119 | 115 => (usize::from(self.u8(pos + 1)?), pos + 2),
            118 | 100 => (usize::from(self.u16(pos + 1)?), pos + 3),
            _ => {
                return at(pos, refused(tag).map_or_else(|| format!("expected an atom, got tag {tag}"), str::to_owned))
            }
        };
        let end = first + length;
        if end > self.data.len() {
            return at(pos, "truncated atom".to_owned());
        }
        let raw = &self.data[first..end];
        let latin1 = tag == 100 || tag == 115;
        let slot = recent_slot(raw, latin1);
        if let Some(value) = recent_atom(self.py, raw, latin1, slot) {
            return Ok((value, end));
        }
        let value = match cached_atom(self.py, raw, latin1) {
            Some(value) => value,
            None => self.new_atom(raw, latin1, pos)?,
        };
        remember_recent(self.py, raw, latin1, slot, &value);
        Ok((value, end))
    }

    /// Validate and build an atom missing from the cache; true/false are bools.
    fn new_atom(&self, raw: &[u8], latin1: bool, pos: usize) -> R<PyObject> {
        let py = self.py;
        let owned: String;
        let text: &str = if latin1 {
            if raw.len() > MAX_ATOM_CHARS {
                return at(pos, format!("atom of {} characters exceeds {MAX_ATOM_CHARS}", raw.len()));
            }
            owned = raw.iter().map(|&b| char::from(b)).collect();
            &owned
        } else {
            if raw.len() > MAX_ATOM_UTF8_BYTES {
                return at(pos, format!("atom of {} bytes exceeds {MAX_ATOM_CHARS} characters", raw.len()));
            }
            let Ok(text) = std::str::from_utf8(raw) else {
                return at(pos, "atom is not valid UTF-8".to_owned());
            };
            let chars = text.chars().count();
            if chars > MAX_ATOM_CHARS {
                return at(pos, format!("atom of {chars} characters exceeds {MAX_ATOM_CHARS}"));
            }
            text
        };
        let value = match text {
            "true" => small_obj(py, true),
            "false" => small_obj(py, false),
            _ => self.refs.str_new.bind(py).call1((self.refs.atom.bind(py), PyString::new(py, text)))?.unbind(),
        };
        remember_atom(py, raw, latin1, &value);
        Ok(value)
    }

    /// An atom used as a name (node, module, function): never a bool.
    fn name_atom(&self, pos: usize) -> R<(PyObject, usize)> {
        let (value, end) = self.atom(pos)?;
        let py = self.py;
        let bound = value.bind(py);
        if let Ok(flag) = bound.downcast_exact::<PyBool>() {
            let name = if flag.is_true() { &self.refs.atom_true } else { &self.refs.atom_false };
            return Ok((name.clone_ref(py), end));
        }
        Ok((value, end))
    }

    // --- numbers -------------------------------------------------------------------------

    fn new_float(&self, pos: usize) -> R<(PyObject, usize)> {
        let value = f64::from_be_bytes(self.array(pos + 1)?);
        if !value.is_finite() {
            return at(pos, format!("float {} is not finite", py_float_text(value)));
        }
        Ok((small_obj(self.py, value), pos + 9))
    }

    /// FLOAT_EXT: 31 bytes of `%.20e` text, NUL padded, parsed by Python's
    /// `float` so that what it accepts is exactly what the pure core accepts.
    fn old_float(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let end = pos + 32;
        if end > self.data.len() {
            return at(pos, "truncated float".to_owned());
        }
        let field = &self.data[pos + 1..end];
        let text = field.split(|&b| b == 0).next().unwrap_or(field);
        let repr = || -> R<String> { Ok(PyBytes::new(py, text).repr()?.to_string()) };
        let parsed = if text.is_ascii() {
            let as_str = std::str::from_utf8(text).expect("ASCII is UTF-8");
            py.get_type::<pyo3::types::PyFloat>().call1((as_str,)).ok()
        } else {
            None
        };
        let Some(value) = parsed else {
            return at(pos, format!("bad float text {}", repr()?));
        };
        let number: f64 = value.extract()?;
        if !number.is_finite() {
            return at(pos, format!("float {} is not finite", repr()?));
        }
        Ok((value.unbind(), end))
    }

    /// SMALL_BIG_EXT / LARGE_BIG_EXT: sign byte and little-endian magnitude.
    fn big(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let (length, first) = if self.data[pos] == 110 {
            (u64::from(self.u8(pos + 1)?), pos + 3)
        } else {
            (u64::from(self.u32(pos + 1)?), pos + 6)
        };
        if length > self.limits.max_bigint_bytes {
            return at(
                pos,
                format!("integer of {length} bytes exceeds the {} cap", self.limits.max_bigint_bytes),
            );
        }
        // OTP treats any non-zero sign byte as negative.
        let negative = self.u8(first - 1)? != 0;
        let end = first + length as usize;
        if end > self.data.len() {
            return at(pos, "truncated integer".to_owned());
        }
        let digits = &self.data[first..end];
        if digits.len() <= 8 {
            let mut le = [0u8; 8];
            le[..digits.len()].copy_from_slice(digits);
            let magnitude = i128::from(u64::from_le_bytes(le));
            let value = if negative { -magnitude } else { magnitude };
            return Ok((small_obj(py, value), end));
        }
        let int_type = py.get_type::<pyo3::types::PyInt>();
        let magnitude = int_type.call_method1(intern!(py, "from_bytes"), (PyBytes::new(py, digits), "little"))?;
        let value = if negative { magnitude.neg()? } else { magnitude };
        Ok((value.unbind(), end))
    }

    // --- binaries ------------------------------------------------------------------------

    fn bit_binary(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let length = self.u32(pos + 1)?;
        let bits = self.u8(pos + 5)?;
        if length == 0 {
            return at(pos, "bit binary with no bytes".to_owned());
        }
        if !(1..=8).contains(&bits) {
            return at(pos, format!("bit binary uses {bits} bits of its last byte, must be 1..8"));
        }
        if u64::from(length) > self.limits.max_binary_bytes {
            return at(pos, format!("binary of {length} bytes exceeds the {} cap", self.limits.max_binary_bytes));
        }
        let first = pos + 6;
        let end = first + length as usize;
        if end > self.data.len() {
            return at(pos, "truncated bit binary".to_owned());
        }
        let raw = PyBytes::new(py, &self.data[first..end]);
        // All 8 bits used is a plain binary; OTP decodes it as one too.
        if bits == 8 {
            return Ok((raw.into_any().unbind(), end));
        }
        Ok((self.refs.bit_binary.bind(py).call1((raw, bits))?.unbind(), end))
    }

    // --- identifiers ---------------------------------------------------------------------

    /// NEW_PID_EXT (88) or PID_EXT (103).
    fn pid(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let (node, p) = self.name_atom(pos + 1)?;
        let ident = self.u32(p)?;
        let serial = self.u32(p + 4)?;
        let (creation, end) = if self.data[pos] == 88 {
            (self.u32(p + 8)?, p + 12)
        } else {
            (u32::from(self.u8(p + 8)?), p + 9)
        };
        let fields = [node, small_obj(py, ident), small_obj(py, serial), small_obj(py, creation)];
        Ok((self.refs.pid.build(py, fields)?.unbind(), end))
    }

    /// NEW_PORT_EXT (89), V4_PORT_EXT (120) or PORT_EXT (102).
    fn port(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let (node, p) = self.name_atom(pos + 1)?;
        let (ident, creation, end) = match self.data[pos] {
            89 => (u64::from(self.u32(p)?), self.u32(p + 4)?, p + 8),
            120 => (u64::from_be_bytes(self.array(p)?), self.u32(p + 8)?, p + 12),
            _ => (u64::from(self.u32(p)?), u32::from(self.u8(p + 4)?), p + 5),
        };
        Ok((self.refs.port.build(py, [node, small_obj(py, ident), small_obj(py, creation)])?.unbind(), end))
    }

    fn old_reference(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let (node, p) = self.name_atom(pos + 1)?;
        let ident = self.u32(p)?;
        let creation = self.u8(p + 4)?;
        let ids = PyTuple::new(py, [ident])?;
        let fields = [node, small_obj(py, creation), ids.into_any().unbind()];
        Ok((self.refs.reference.build(py, fields)?.unbind(), p + 5))
    }

    /// NEW_REFERENCE_EXT (1-byte creation) and NEWER_REFERENCE_EXT (4-byte).
    fn reference(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let newer = self.data[pos] == 90;
        let words = usize::from(self.u16(pos + 1)?);
        if words > MAX_REFERENCE_WORDS {
            return at(pos, format!("reference of {words} words, at most {MAX_REFERENCE_WORDS}"));
        }
        let (node, mut p) = self.name_atom(pos + 3)?;
        let creation = if newer {
            p += 4;
            self.u32(p - 4)?
        } else {
            p += 1;
            u32::from(self.u8(p - 1)?)
        };
        if p + 4 * words > self.data.len() {
            return Err(Fail::Truncated);
        }
        let ids = (0..words).map(|i| self.u32(p + 4 * i)).collect::<R<Vec<u32>>>()?;
        let ids = PyTuple::new(py, ids)?;
        let fields = [node, small_obj(py, creation), ids.into_any().unbind()];
        Ok((self.refs.reference.build(py, fields)?.unbind(), p + 4 * words))
    }

    fn export(&self, pos: usize) -> R<(PyObject, usize)> {
        let py = self.py;
        let (module, p) = self.name_atom(pos + 1)?;
        let (function, p) = self.name_atom(p)?;
        let tag = self.u8(p)?;
        if tag != 97 {
            return at(pos, format!("export arity must be a small integer, got tag {tag}"));
        }
        let arity = self.u8(p + 1)?;
        Ok((self.refs.export.bind(py).call1((module, function, arity))?.unbind(), p + 2))
    }
}

/// `data` as `bytes`: itself, or a copy of any other buffer (as `bytes(data)`).
fn as_bytes<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(bytes) = data.downcast_exact::<PyBytes>() {
        return Ok(bytes.clone());
    }
    let copy = data.py().get_type::<PyBytes>().call1((data,))?;
    Ok(copy.downcast_into::<PyBytes>()?)
}

/// `decode(data, *, limits=None)`: exactly one term after the 131 version byte.
#[pyfunction]
#[pyo3(signature = (data, *, limits=None))]
pub fn decode(py: Python<'_>, data: &Bound<'_, PyAny>, limits: Option<&Bound<'_, PyAny>>) -> PyResult<PyObject> {
    let limits = Limits::from_py(limits)?;
    let data = as_bytes(data)?;
    let bytes = data.as_bytes();
    let decoder = Decoder::new(py, bytes, limits)?;
    let result = decoder.top(0, true).and_then(|(term, end)| {
        if end != bytes.len() {
            return at(end, format!("{} trailing bytes after the term", bytes.len() - end));
        }
        Ok(term)
    });
    result.map_err(|fail| into_pyerr(py, fail))
}

/// `decode_prefix(data, offset=0, *, limits=None, version_byte=True)`: one
/// term at `offset`, and the offset just past it.
#[pyfunction]
#[pyo3(signature = (data, offset=None, *, limits=None, version_byte=true))]
pub fn decode_prefix(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    offset: Option<&Bound<'_, PyAny>>,
    limits: Option<&Bound<'_, PyAny>>,
    version_byte: bool,
) -> PyResult<(PyObject, usize)> {
    let data = as_bytes(data)?;
    let offset: usize = match offset {
        None => 0,
        Some(offset) => {
            if offset.lt(0)? {
                return Err(PyValueError::new_err(format!("offset must be >= 0, got {offset}")));
            }
            if offset.gt(data.as_bytes().len())? {
                // Past the end (maybe past any usize): nothing to decode there.
                let reason = if version_byte { "truncated: no version byte" } else { "truncated term" };
                let exc = refs(py)?.decode_error.bind(py).call1((offset, reason))?;
                return Err(PyErr::from_value(exc));
            }
            offset.extract()?
        }
    };
    let limits = Limits::from_py(limits)?;
    let decoder = Decoder::new(py, data.as_bytes(), limits)?;
    decoder.top(offset, version_byte).map_err(|fail| into_pyerr(py, fail))
}
