//! The External Term Format encoder, a mirror of `erldist/term/encode.py`.
//!
//! It dispatches on the exact type of each value, and a subclass (`IntEnum`,
//! a named tuple...) is encoded as its nearest supported base class, found
//! along its MRO as the pure encoder does. Errors carry the pure encoder's
//! messages. Compression stays in Python (`zlib`), so compressed output is
//! byte for byte the same too.

use std::cell::RefCell;

use pyo3::exceptions::PyUnicodeEncodeError;
use pyo3::intern;
use pyo3::sync::GILProtected;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyList, PyInt, PyString, PyTuple, PyType,
};

use crate::pyrefs::{refs, Refs};

const MAX_ATOM_CHARS: usize = 255;
const MAX_REFERENCE_WORDS: usize = 5;
/// Nesting at which encoding gives up, as the pure encoder does when it
/// reaches Python's recursion limit (1000 by default).
const MAX_DEPTH: usize = 1000;
const TOO_DEEP: &str = "term nests too deeply to encode (or contains itself)";
/// The output buffer is kept for the next call (no allocation per small
/// term) unless it grew past this.
const SPARE_MAX_BYTES: usize = 64 * 1024;
static SPARE: GILProtected<RefCell<Vec<u8>>> = GILProtected::new(RefCell::new(Vec::new()));

#[derive(Clone, Copy)]
enum Kind {
    Atom,
    Bool,
    Int,
    Float,
    Tuple,
    List,
    Dict,
    Bytes,
    MemoryView,
    Str,
    BitBinary,
    ImproperList,
    Pid,
    Reference,
    Port,
    Export,
    Fun,
}

pub(crate) struct Encoder<'a, 'py> {
    py: Python<'py>,
    refs: &'a Refs,
    pub(crate) out: Vec<u8>,
}

fn encode_error(py: Python<'_>, refs: &Refs, message: String) -> PyErr {
    match refs.encode_error.bind(py).call1((message,)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

fn push_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

impl<'a, 'py> Encoder<'a, 'py> {
    fn fail<T>(&self, message: String) -> PyResult<T> {
        Err(encode_error(self.py, self.refs, message))
    }

    /// The kind of a type, given its address (the exact type only).
    fn kind_of(&self, t: usize) -> Option<Kind> {
        let ids = &self.refs.types;
        Some(match t {
            _ if t == ids.atom => Kind::Atom,
            _ if t == ids.int => Kind::Int,
            _ if t == ids.bytes || t == ids.bytearray => Kind::Bytes,
            _ if t == ids.tuple => Kind::Tuple,
            _ if t == ids.list || t == ids.frozen_list => Kind::List,
            _ if t == ids.dict || t == ids.frozen_map => Kind::Dict,
            _ if t == ids.bool => Kind::Bool,
            _ if t == ids.float => Kind::Float,
            _ if t == ids.str => Kind::Str,
            _ if t == ids.pid => Kind::Pid,
            _ if t == ids.reference => Kind::Reference,
            _ if t == ids.port => Kind::Port,
            _ if t == ids.bit_binary => Kind::BitBinary,
            _ if t == ids.improper_list => Kind::ImproperList,
            _ if t == ids.export => Kind::Export,
            _ if t == ids.fun => Kind::Fun,
            _ if t == ids.memoryview => Kind::MemoryView,
            _ => return None,
        })
    }

    /// The kind of the nearest supported base class, or the pure encoder's error.
    fn fallback(&self, term: &Bound<'py, PyAny>) -> PyResult<Kind> {
        let py = self.py;
        let ty = term.get_type();
        let mro = ty.getattr(intern!(py, "__mro__"))?;
        for base in mro.try_iter()?.skip(1) {
            if let Some(kind) = self.kind_of(base?.downcast::<PyType>()?.as_ptr() as usize) {
                return Ok(kind);
            }
        }
        if term.is_none() {
            return self.fail(
                "None has no Erlang equivalent: use Atom('undefined') or Atom('nil') \
                 (whichever the receiving code expects)"
                    .to_owned(),
            );
        }
        let name = ty.qualname()?;
        let repr = term.repr()?.to_string();
        let short: String = repr.chars().take(80).collect();
        self.fail(format!("cannot encode a value of type {name}: {short}"))
    }

    pub(crate) fn encode(&mut self, term: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        if depth > MAX_DEPTH {
            return self.fail(TOO_DEEP.to_owned());
        }
        let kind = match self.kind_of(term.get_type_ptr() as usize) {
            Some(kind) => kind,
            None => self.fallback(term)?,
        };
        match kind {
            Kind::Atom => self.atom(term),
            Kind::Bool => {
                let text: &[u8] = if term.is_truthy()? { b"true" } else { b"false" };
                self.out.push(119);
                self.out.push(text.len() as u8);
                self.out.extend_from_slice(text);
                Ok(())
            }
            Kind::Int => self.int(term),
            Kind::Float => {
                let value: f64 = term.extract()?;
                if !value.is_finite() {
                    return self.fail(format!("Erlang floats are finite; cannot encode {}", term.str()?));
                }
                self.out.push(70);
                self.out.extend_from_slice(&value.to_be_bytes());
                Ok(())
            }
            Kind::Tuple => {
                // Exact first: a type address comparison, where the
                // subclass check is a call into Python's API.
                let tuple = match term.downcast_exact::<PyTuple>() {
                    Ok(tuple) => tuple,
                    Err(_) => term.downcast::<PyTuple>()?,
                };
                let size = tuple.len();
                if size <= 255 {
                    self.out.push(104);
                    self.out.push(size as u8);
                } else {
                    self.out.push(105);
                    push_u32(&mut self.out, size as u32);
                }
                // Borrowed items: the tuple, alive and immutable, holds them.
                for item in tuple.iter_borrowed() {
                    self.encode(&item, depth + 1)?;
                }
                Ok(())
            }
            Kind::List => self.list(term, depth),
            Kind::Dict => {
                let size = term.len()?;
                self.out.push(116);
                push_u32(&mut self.out, size as u32);
                if let Ok(dict) = term.downcast_exact::<PyDict>() {
                    for (key, value) in dict.iter() {
                        self.encode(&key, depth + 1)?;
                        self.encode(&value, depth + 1)?;
                    }
                } else {
                    for pair in term.call_method0(intern!(self.py, "items"))?.try_iter()? {
                        let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = pair?.extract()?;
                        self.encode(&key, depth + 1)?;
                        self.encode(&value, depth + 1)?;
                    }
                }
                Ok(())
            }
            Kind::Bytes => {
                if let Ok(bytes) = term.downcast_exact::<PyBytes>() {
                    let raw = bytes.as_bytes();
                    self.out.push(109);
                    push_u32(&mut self.out, raw.len() as u32);
                    self.out.extend_from_slice(raw);
                } else {
                    // A subclass: its length as Python's `len` gives it, as in
                    // the pure encoder.
                    let len = term.len()?;
                    self.out.push(109);
                    push_u32(&mut self.out, len as u32);
                    if let Ok(bytes) = term.downcast::<PyBytes>() {
                        self.out.extend_from_slice(bytes.as_bytes());
                    } else {
                        self.out.extend_from_slice(&term.downcast::<PyByteArray>()?.to_vec());
                    }
                }
                Ok(())
            }
            Kind::MemoryView => {
                let raw = term.call_method0(intern!(self.py, "tobytes"))?;
                let raw = raw.downcast::<PyBytes>()?.as_bytes();
                self.out.push(109);
                push_u32(&mut self.out, raw.len() as u32);
                self.out.extend_from_slice(raw);
                Ok(())
            }
            Kind::Str => {
                let text = utf8(term.downcast::<PyString>()?).map_err(|reason| {
                    encode_error(self.py, self.refs, format!("str is not encodable as UTF-8: {reason}"))
                })?;
                self.out.push(109);
                push_u32(&mut self.out, text.len() as u32);
                self.out.extend_from_slice(text.as_bytes());
                Ok(())
            }
            Kind::BitBinary => {
                let py = self.py;
                let data = term.getattr(intern!(py, "data"))?;
                let data = data.downcast::<PyBytes>()?.as_bytes();
                let bits: u8 = term.getattr(intern!(py, "bits"))?.extract()?;
                self.out.push(77);
                push_u32(&mut self.out, data.len() as u32);
                self.out.push(bits);
                self.out.extend_from_slice(data);
                Ok(())
            }
            Kind::ImproperList => {
                let py = self.py;
                let items = term.getattr(intern!(py, "items"))?;
                self.out.push(108);
                push_u32(&mut self.out, items.len()? as u32);
                for item in items.try_iter()? {
                    self.encode(&item?, depth + 1)?;
                }
                self.encode(&term.getattr(intern!(py, "tail"))?, depth + 1)
            }
            Kind::Pid => self.pid(term),
            Kind::Reference => self.reference(term),
            Kind::Port => self.port(term),
            Kind::Export => self.export(term),
            Kind::Fun => {
                // Opaque: the bytes received are the bytes sent.
                let raw = term.getattr(intern!(self.py, "raw"))?;
                if let Ok(bytes) = raw.downcast::<PyBytes>() {
                    self.out.extend_from_slice(bytes.as_bytes());
                } else {
                    let buf = PyByteArray::new(self.py, b"");
                    buf.call_method1(intern!(self.py, "__iadd__"), (raw,))?;
                    self.out.extend_from_slice(&buf.to_vec());
                }
                Ok(())
            }
        }
    }

    fn int(&mut self, term: &Bound<'py, PyAny>) -> PyResult<()> {
        if let Ok(value) = term.extract::<i64>() {
            if (0..=255).contains(&value) {
                self.out.push(97);
                self.out.push(value as u8);
            } else if let Ok(small) = i32::try_from(value) {
                self.out.push(98);
                self.out.extend_from_slice(&small.to_be_bytes());
            } else {
                let magnitude = value.unsigned_abs();
                let size = (64 - magnitude.leading_zeros() as usize).div_ceil(8);
                self.out.extend_from_slice(&[110, size as u8, u8::from(value < 0)]);
                self.out.extend_from_slice(&magnitude.to_le_bytes()[..size]);
            }
            return Ok(());
        }
        let py = self.py;
        let negative = term.lt(0)?;
        let magnitude = if negative { term.neg()? } else { term.clone() };
        let bits: usize = magnitude.call_method0(intern!(py, "bit_length"))?.extract()?;
        let size = bits.div_ceil(8);
        if size <= 255 {
            self.out.extend_from_slice(&[110, size as u8, u8::from(negative)]);
        } else {
            self.out.push(111);
            push_u32(&mut self.out, size as u32);
            self.out.push(u8::from(negative));
        }
        let digits = magnitude.call_method1(intern!(py, "to_bytes"), (size, "little"))?;
        self.out.extend_from_slice(digits.downcast::<PyBytes>()?.as_bytes());
        Ok(())
    }

    fn list(&mut self, term: &Bound<'py, PyAny>, depth: usize) -> PyResult<()> {
        let items: Vec<Bound<'py, PyAny>> = if let Ok(list) = term.downcast::<PyList>() {
            list.iter().collect()
        } else if let Ok(tuple) = term.downcast::<PyTuple>() {
            tuple.iter().collect()
        } else {
            term.try_iter()?.collect::<PyResult<_>>()?
        };
        let size = items.len();
        if size == 0 {
            self.out.push(106);
            return Ok(());
        }
        if size <= 0xFFFF && self.string_ext(&items) {
            return Ok(());
        }
        self.out.push(108);
        push_u32(&mut self.out, size as u32);
        for item in &items {
            self.encode(item, depth + 1)?;
        }
        self.out.push(106);
        Ok(())
    }

    /// A list of byte-sized ints goes as STRING_EXT, as OTP sends it (only
    /// exact ints: True and False are atoms). Writes it and says true, or
    /// writes nothing and says false at the first item that does not fit.
    fn string_ext(&mut self, items: &[Bound<'py, PyAny>]) -> bool {
        let start = self.out.len();
        self.out.push(107);
        self.out.extend_from_slice(&(items.len() as u16).to_be_bytes());
        for item in items {
            // i64 first: it fails without building an error for 256..2**63.
            let byte = if item.is_exact_instance_of::<PyInt>() {
                item.extract::<i64>().ok().and_then(|value| u8::try_from(value).ok())
            } else {
                None
            };
            let Some(byte) = byte else {
                self.out.truncate(start);
                return false;
            };
            self.out.push(byte);
        }
        true
    }

    /// SMALL_ATOM_UTF8_EXT when the UTF-8 fits in 255 bytes, else ATOM_UTF8_EXT.
    fn atom(&mut self, name: &Bound<'py, PyAny>) -> PyResult<()> {
        let Ok(text) = name.downcast::<PyString>() else {
            // Not a str at all: the pure encoder says what is wrong with it.
            let encoded = self.refs.atom_bytes.bind(self.py).call1((name,))?;
            self.out.extend_from_slice(encoded.downcast::<PyBytes>()?.as_bytes());
            return Ok(());
        };
        // Valid UTF-8 of at most 255 bytes holds at most 255 characters, so
        // an exact `Atom` or `str` that short is not counted. Otherwise the
        // length comes first, from Python's `len` as in the pure encoder (a
        // subclass may define its own).
        let ty = name.get_type_ptr() as usize;
        let plain = ty == self.refs.types.atom || ty == self.refs.types.str;
        let raw = match text.to_str() {
            Ok(raw) if plain && raw.len() <= MAX_ATOM_CHARS => raw,
            utf8 => {
                let chars = text.len()?;
                if chars > MAX_ATOM_CHARS {
                    return self.fail(format!("an atom holds at most {MAX_ATOM_CHARS} characters, got {chars}"));
                }
                match utf8 {
                    Ok(raw) => raw,
                    Err(err) => {
                        let reason = refusal(self.py, err);
                        return self.fail(format!("atom is not encodable as UTF-8: {reason}"));
                    }
                }
            }
        };
        let size = raw.len();
        if size <= 255 {
            self.out.push(119);
            self.out.push(size as u8);
        } else {
            self.out.push(118);
            self.out.extend_from_slice(&(size as u16).to_be_bytes());
        }
        self.out.extend_from_slice(raw.as_bytes());
        Ok(())
    }

    fn pid(&mut self, term: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let ident = term.getattr(intern!(py, "id"))?;
        let serial = term.getattr(intern!(py, "serial"))?;
        let creation = term.getattr(intern!(py, "creation"))?;
        let (Ok(i), Ok(s), Ok(c)) = (ident.extract::<u32>(), serial.extract::<u32>(), creation.extract::<u32>())
        else {
            return self.fail(format!(
                "Pid id, serial and creation must be ints in 0..2**32-1, got {}, {}, {}",
                ident.repr()?,
                serial.repr()?,
                creation.repr()?
            ));
        };
        self.out.push(88);
        self.atom(&term.getattr(intern!(py, "node"))?)?;
        for word in [i, s, c] {
            push_u32(&mut self.out, word);
        }
        Ok(())
    }

    fn reference(&mut self, term: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let ids = term.getattr(intern!(py, "ids"))?;
        let words = ids.len()?;
        if words > MAX_REFERENCE_WORDS {
            return self.fail(format!("a reference has at most {MAX_REFERENCE_WORDS} id words, got {words}"));
        }
        let creation = term.getattr(intern!(py, "creation"))?;
        let mut tail: Vec<Option<u32>> = vec![creation.extract::<u32>().ok()];
        for id in ids.try_iter()? {
            tail.push(id?.extract::<u32>().ok());
        }
        let tail: Option<Vec<u32>> = if tail.len() == words + 1 { tail.into_iter().collect() } else { None };
        let Some(tail) = tail else {
            return self.fail(format!(
                "Reference creation and id words must be ints in 0..2**32-1, got {}, {}",
                creation.repr()?,
                ids.repr()?
            ));
        };
        self.out.push(90);
        self.out.extend_from_slice(&(words as u16).to_be_bytes());
        self.atom(&term.getattr(intern!(py, "node"))?)?;
        for word in tail {
            push_u32(&mut self.out, word);
        }
        Ok(())
    }

    fn port(&mut self, term: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let creation = term.getattr(intern!(py, "creation"))?;
        let creation_ok = if creation.is_exact_instance_of::<PyInt>() { creation.extract::<u32>().ok() } else { None };
        let Some(creation_word) = creation_ok else {
            return self.fail(format!("Port.creation must be an int in 0..2**32-1, got {}", creation.repr()?));
        };
        let ident = term.getattr(intern!(py, "id"))?;
        let ident_ok = if ident.is_exact_instance_of::<PyInt>() { ident.extract::<u64>().ok() } else { None };
        let Some(id) = ident_ok else {
            return self.fail(format!("Port.id must be an int in 0..2**64-1, got {}", ident.repr()?));
        };
        let node = term.getattr(intern!(py, "node"))?;
        if let Ok(small) = u32::try_from(id) {
            self.out.push(89);
            self.atom(&node)?;
            push_u32(&mut self.out, small);
        } else {
            self.out.push(120);
            self.atom(&node)?;
            self.out.extend_from_slice(&id.to_be_bytes());
        }
        push_u32(&mut self.out, creation_word);
        Ok(())
    }

    fn export(&mut self, term: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let arity = term.getattr(intern!(py, "arity"))?;
        let arity_ok = if arity.is_exact_instance_of::<PyInt>() { arity.extract::<u8>().ok() } else { None };
        let Some(arity_byte) = arity_ok else {
            return self.fail(format!("Export.arity must be an int in 0..255, got {}", arity.repr()?));
        };
        self.out.push(113);
        self.atom(&term.getattr(intern!(py, "module"))?)?;
        self.atom(&term.getattr(intern!(py, "function"))?)?;
        self.out.push(97);
        self.out.push(arity_byte);
        Ok(())
    }
}

/// A str's UTF-8, or the reason Python gives for refusing it (lone surrogates).
fn utf8<'a>(text: &'a Bound<'_, PyString>) -> Result<&'a str, String> {
    text.to_str().map_err(|err| refusal(text.py(), err))
}

/// The reason of a failed UTF-8 encoding, as the pure encoder quotes it.
fn refusal(py: Python<'_>, err: PyErr) -> String {
    if err.is_instance_of::<PyUnicodeEncodeError>(py) {
        if let Ok(reason) = err.value(py).getattr("reason") {
            return reason.to_string();
        }
    }
    err.to_string()
}

/// Run `fill` on an encoder and return what it wrote as `bytes`. The
/// buffer is the one the previous call left (no allocation per small term):
/// taken out of its cell, so a nested call (from Python code run by this one)
/// finds the cell empty and grows its own.
pub(crate) fn with_spare<'py>(
    py: Python<'py>,
    fill: impl FnOnce(&mut Encoder<'_, 'py>) -> PyResult<()>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = SPARE.get(py).take();
    let mut encoder = Encoder { py, refs: refs(py)?, out };
    let result = fill(&mut encoder).map(|()| PyBytes::new(py, &encoder.out));
    let mut out = encoder.out;
    if out.capacity() <= SPARE_MAX_BYTES {
        out.clear();
        SPARE.get(py).replace(out);
    }
    result
}

/// `encode_body(term, version)`: the encoding of `term`, after the 131
/// version byte when `version` is true.
#[pyfunction]
#[pyo3(signature = (term, version=true))]
pub fn encode_body<'py>(py: Python<'py>, term: &Bound<'py, PyAny>, version: bool) -> PyResult<Bound<'py, PyBytes>> {
    with_spare(py, |encoder| {
        if version {
            encoder.out.push(131);
        }
        encoder.encode(term, 0)
    })
}

/// `encode(term, *, compressed=False)`: the external format of `term`.
/// Compressed output comes from the pure core's helper (Python's zlib), so
/// it is byte for byte the pure encoder's.
#[pyfunction]
#[pyo3(signature = (term, *, compressed=None))]
pub fn encode<'py>(
    py: Python<'py>,
    term: &Bound<'py, PyAny>,
    compressed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    match compressed {
        Some(level) if !level.is(&*PyBool::new(py, false)) => {
            let helper = py.import("erldist.term.native")?.getattr("_encode_compressed")?;
            helper.call1((term, level))
        }
        _ => Ok(encode_body(py, term, true)?.into_any()),
    }
}
