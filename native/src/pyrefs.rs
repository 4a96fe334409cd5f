//! The Python objects the native core builds or raises, looked up once.
//!
//! They are imported lazily (at the first call, not at module import) because
//! `erldist.term` imports this module while it is itself being imported.

use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyString, PyTuple, PyType};

/// A frozen slots dataclass (`Pid`, `Port`, `Reference`) built without
/// running its generated `__init__`, which is Python code setting each field
/// through `object.__setattr__` (several thousand instructions a pid): the
/// instance comes from `object.__new__` and each field is stored by its slot
/// descriptor's `__set__`, the very store `__init__` makes. The result is the
/// same object: same fields, so the same equality, hash and repr, and still
/// frozen. The shortcut is taken only for a class it fits (fields in slots,
/// no `__post_init__`); any other is called as usual.
pub struct Record {
    class: Py<PyAny>,
    /// `object.__new__` and the field setters in `__init__`'s order.
    fast: Option<(Py<PyAny>, Vec<Py<PyAny>>)>,
}

impl Record {
    fn new(py: Python<'_>, class: &Bound<'_, PyAny>) -> PyResult<Record> {
        let builtins = py.import("builtins")?;
        let member = py.import("types")?.getattr("MemberDescriptorType")?;
        let fields = py.import("dataclasses")?.call_method1("fields", (class,))?;
        let mut setters = Vec::new();
        let mut fits = !class.hasattr("__post_init__")?;
        for field in fields.try_iter()? {
            let name = field?.getattr("name")?;
            let slot = class.getattr(name.downcast::<PyString>()?)?;
            fits &= slot.get_type().is(&member);
            setters.push(slot.getattr("__set__")?.unbind());
        }
        let object_new = builtins.getattr("object")?.getattr("__new__")?.unbind();
        Ok(Record { class: class.clone().unbind(), fast: fits.then_some((object_new, setters)) })
    }

    /// An instance with these field values, in declaration order.
    pub fn build<'py, const N: usize>(&self, py: Python<'py>, values: [PyObject; N]) -> PyResult<Bound<'py, PyAny>> {
        let class = self.class.bind(py);
        match &self.fast {
            Some((object_new, setters)) if setters.len() == N => {
                let instance = object_new.bind(py).call1((class,))?;
                for (setter, value) in setters.iter().zip(values) {
                    setter.bind(py).call1((&instance, value))?;
                }
                Ok(instance)
            }
            _ => class.call1(PyTuple::new(py, values)?),
        }
    }
}

pub struct Refs {
    pub atom: Py<PyType>,
    pub pid: Record,
    pub port: Record,
    pub reference: Record,
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
            pid: Record::new(py, &types.getattr("Pid")?)?,
            port: Record::new(py, &types.getattr("Port")?)?,
            reference: Record::new(py, &types.getattr("Reference")?)?,
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
