//! The Python objects the native core builds or raises, looked up once.
//!
//! They are imported lazily (at the first call, not at module import) because
//! `erldist.term` imports this module while it is itself being imported.

use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyString, PyType};

pub struct Refs {
    pub atom: Py<PyType>,
    pub pid: Py<PyAny>,
    pub port: Py<PyAny>,
    pub reference: Py<PyAny>,
    pub bit_binary: Py<PyAny>,
    pub export: Py<PyAny>,
    pub fun: Py<PyAny>,
    pub improper_list: Py<PyAny>,
    pub frozen_list: Py<PyAny>,
    pub frozen_map: Py<PyAny>,
    pub decode_error: Py<PyAny>,
    pub encode_error: Py<PyAny>,
    /// `str.__new__`, to make an `Atom` without running `Atom.__new__`'s
    /// length check a second time (the decoder has checked it).
    pub str_new: Py<PyAny>,
    /// The pure decoder's `_freeze` (lists and maps used as map keys).
    pub freeze: Py<PyAny>,
    /// The pure decoder's `_inflate`: zlib stays Python's, so a compressed
    /// term's errors read exactly as the pure core's.
    pub inflate: Py<PyAny>,
    /// The pure encoder's `_atom_bytes`, for node/module names that are not
    /// `str` at all: it raises exactly what the pure encoder raises.
    pub atom_bytes: Py<PyAny>,
    pub atom_true: Py<PyAny>,
    pub atom_false: Py<PyAny>,
    /// Addresses of the type objects the encoder dispatches on, compared as
    /// integers (the types are immortal builtins or kept alive above).
    pub types: TypeIds,
}

#[derive(Clone, Copy)]
pub struct TypeIds {
    pub atom: usize,
    pub int: usize,
    pub bytes: usize,
    pub bytearray: usize,
    pub tuple: usize,
    pub list: usize,
    pub dict: usize,
    pub bool: usize,
    pub float: usize,
    pub str: usize,
    pub memoryview: usize,
    pub frozen_list: usize,
    pub frozen_map: usize,
    pub pid: usize,
    pub reference: usize,
    pub port: usize,
    pub bit_binary: usize,
    pub improper_list: usize,
    pub export: usize,
    pub fun: usize,
}

static REFS: GILOnceCell<Refs> = GILOnceCell::new();

pub fn refs(py: Python<'_>) -> PyResult<&'static Refs> {
    REFS.get_or_try_init(py, || {
        let types = py.import("erldist.term.types")?;
        let errors = py.import("erldist.errors")?;
        let pure_decode = py.import("erldist.term.decode")?;
        let pure_encode = py.import("erldist.term.encode")?;
        let builtins = py.import("builtins")?;
        let get = |name: &str| -> PyResult<Py<PyAny>> { Ok(types.getattr(name)?.unbind()) };
        let atom = types.getattr("Atom")?.downcast_into::<PyType>()?;
        let str_new = builtins.getattr("str")?.getattr("__new__")?;
        let make_atom = |text: &str| -> PyResult<Py<PyAny>> {
            Ok(str_new.call1((&atom, PyString::new(py, text)))?.unbind())
        };
        let id = |name: &str| -> PyResult<usize> { Ok(types.getattr(name)?.as_ptr() as usize) };
        let builtin = |name: &str| -> PyResult<usize> { Ok(builtins.getattr(name)?.as_ptr() as usize) };
        let type_ids = TypeIds {
            atom: atom.as_ptr() as usize,
            int: builtin("int")?,
            bytes: builtin("bytes")?,
            bytearray: builtin("bytearray")?,
            tuple: builtin("tuple")?,
            list: builtin("list")?,
            dict: builtin("dict")?,
            bool: builtin("bool")?,
            float: builtin("float")?,
            str: builtin("str")?,
            memoryview: builtin("memoryview")?,
            frozen_list: id("FrozenList")?,
            frozen_map: id("FrozenMap")?,
            pid: id("Pid")?,
            reference: id("Reference")?,
            port: id("Port")?,
            bit_binary: id("BitBinary")?,
            improper_list: id("ImproperList")?,
            export: id("Export")?,
            fun: id("Fun")?,
        };
        Ok(Refs {
            types: type_ids,
            atom_true: make_atom("true")?,
            atom_false: make_atom("false")?,
            pid: get("Pid")?,
            port: get("Port")?,
            reference: get("Reference")?,
            bit_binary: get("BitBinary")?,
            export: get("Export")?,
            fun: get("Fun")?,
            improper_list: get("ImproperList")?,
            frozen_list: get("FrozenList")?,
            frozen_map: get("FrozenMap")?,
            decode_error: errors.getattr("DecodeError")?.unbind(),
            encode_error: errors.getattr("EncodeError")?.unbind(),
            freeze: pure_decode.getattr("_freeze")?.unbind(),
            inflate: pure_decode.getattr("_inflate")?.unbind(),
            atom_bytes: pure_encode.getattr("_atom_bytes")?.unbind(),
            str_new: str_new.unbind(),
            atom: atom.unbind(),
        })
    })
}
