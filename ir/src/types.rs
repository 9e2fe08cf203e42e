//! Tensor types of the checked IR: element types and (possibly symbolic) dimensions.

use std::fmt;

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 32-bit signed integer (token ids).
    I32,
    /// Boolean (a mask a graph computes, `NotEqual(0)(ids)`), held as floats 0 and 1.
    Bool,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::Bool => "bool",
        })
    }
}

/// Index of a dimension symbol in [`crate::Program::symbols`].
pub type SymId = usize;

/// One dimension of a tensor (the batch dimension is never listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// Known at compile time.
    Fixed(usize),
    /// `symbol + offset`, known at run time (e.g. `T`, or `T - 2` after cropping).
    Sym {
        /// The symbol.
        id: SymId,
        /// Added to the symbol's value.
        offset: i64,
    },
}

impl Dim {
    /// The size if it is fixed.
    pub fn fixed(self) -> Option<usize> {
        match self {
            Dim::Fixed(n) => Some(n),
            Dim::Sym { .. } => None,
        }
    }

    /// The size given the run-time values of the symbols, or `None` if negative/unbound.
    pub fn resolve(self, bindings: &[Option<usize>]) -> Option<usize> {
        match self {
            Dim::Fixed(n) => Some(n),
            Dim::Sym { id, offset } => {
                let v = bindings.get(id).copied().flatten()? as i64 + offset;
                usize::try_from(v).ok()
            }
        }
    }

    /// Renders the dimension using the symbol names.
    pub fn display(self, symbols: &[String]) -> String {
        match self {
            Dim::Fixed(n) => n.to_string(),
            Dim::Sym { id, offset } => {
                let name = symbols.get(id).map_or("?", String::as_str);
                match offset {
                    0 => name.to_string(),
                    o if o > 0 => format!("{name}+{o}"),
                    o => format!("{name}-{}", -o),
                }
            }
        }
    }
}

/// A tensor type without the batch dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Dimensions, outermost first (time before features).
    pub dims: Vec<Dim>,
    /// Element type.
    pub dtype: DType,
}

impl TensorType {
    /// Renders like `[T, 8]` or `[T] of i32`.
    pub fn display(&self, symbols: &[String]) -> String {
        let dims: Vec<String> = self.dims.iter().map(|d| d.display(symbols)).collect();
        match self.dtype {
            DType::F32 => format!("[{}]", dims.join(", ")),
            dtype => format!("[{}] of {dtype}", dims.join(", ")),
        }
    }

    /// Renders like Keras's `(None, T, 8)`.
    pub fn display_keras(&self, symbols: &[String], batch: Option<usize>) -> String {
        let mut parts = vec![batch.map_or("None".to_string(), |b| b.to_string())];
        parts.extend(self.dims.iter().map(|d| d.display(symbols)));
        format!("({})", parts.join(", "))
    }
}
