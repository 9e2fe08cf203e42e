//! The operations that Keras 3 records between layers of a functional graph (config entries
//! of a `keras.src.ops` module) and that the language writes as layers of their own: slicing
//! on any axis with steps (`x[:, ::2]`), reductions over an axis (`Mean`, `Max`, `Any`, ...),
//! `Stack`, comparisons and logic (the masks a graph computes, `NotEqual(0)`), `Cast`,
//! `ExpandDims`, and the mask given to a layer call (`LSTM(8)(x, mask=m)`).
//!
//! Like Keras's operations, none of them passes a mask on: their outputs are unmasked.
//! Booleans are [`crate::DType::Bool`] tensors, held at run time as floats 0 and 1.

use super::literal::{RustLiteral, literal_struct, literal_unit_enum};
use super::reshape::MAX_RANK;
use super::{LayerAttrs, WeightVar};

/// What `x[...]` selects along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AxisIndex {
    /// `:`: the whole axis.
    #[default]
    All,
    /// `start:stop:step` with Python's rules (negative bounds count from the end; a negative
    /// step walks backwards).
    Range {
        /// First index (default: the first of the walk's direction).
        start: Option<i64>,
        /// End, exclusive (default: past the last of the walk's direction).
        stop: Option<i64>,
        /// Step, never 0.
        step: i64,
    },
    /// One index; the axis is dropped.
    At(i64),
}

impl RustLiteral for AxisIndex {
    fn rust(&self) -> String {
        match self {
            AxisIndex::All => "::seqmodel::ir::AxisIndex::All".into(),
            AxisIndex::Range { start, stop, step } => format!(
                "::seqmodel::ir::AxisIndex::Range {{ start: {}, stop: {}, step: {} }}",
                start.rust(),
                stop.rust(),
                step.rust()
            ),
            AxisIndex::At(i) => format!("::seqmodel::ir::AxisIndex::At({})", i.rust()),
        }
    }
}

/// The positions a Python slice `start:stop:step` takes of an axis of `len`: the first one
/// and how many (each `step` after the previous). A step of 0 takes nothing.
///
/// ```
/// use seqmodel_ir::python_slice;
/// assert_eq!(python_slice(9, None, None, 2), (0, 5));
/// assert_eq!(python_slice(9, Some(-2), Some(1), -3), (7, 2)); // 7, 4
/// assert_eq!(python_slice(4, None, None, -1), (3, 4));
/// assert_eq!(python_slice(3, Some(5), None, 1).1, 0);
/// ```
pub fn python_slice(len: usize, start: Option<i64>, stop: Option<i64>, step: i64) -> (usize, usize) {
    // In i128: no bound or step, however large, overflows.
    let (n, step) = (len as i128, i128::from(step));
    let clamp = |i: i64, lo: i128, hi: i128| {
        let i = i128::from(i);
        let i = if i < 0 { i + n } else { i };
        i.clamp(lo, hi)
    };
    let (first, count) = if step > 0 {
        let s = start.map_or(0, |s| clamp(s, 0, n));
        let e = stop.map_or(n, |e| clamp(e, 0, n));
        (s, if e > s { (e - s + step - 1) / step } else { 0 })
    } else if step < 0 {
        let s = start.map_or(n - 1, |s| clamp(s, -1, n - 1));
        let e = stop.map_or(-1, |e| clamp(e, -1, n - 1));
        (s, if s > e { (s - e - step - 1) / -step } else { 0 })
    } else {
        (0, 0)
    };
    (first.max(0) as usize, count.max(0) as usize)
}

/// The index `i` (negative from the end) of an axis of `len`, if it is inside.
pub fn python_index(len: usize, i: i64) -> Option<usize> {
    let j = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&j).then_some(j as usize)
}

/// The positions a slice reads of one axis: the first, how many, and the step between
/// them.
pub type AxisWalk = (usize, usize, i64);

/// `x[...]` over the axes after the batch: each axis taken whole, sliced or indexed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SliceAttrs {
    /// Number of input axes (without the batch).
    pub rank: usize,
    /// What each axis takes; entries past `rank` are unused.
    pub axes: [AxisIndex; MAX_RANK],
}
literal_struct!(SliceAttrs { rank, axes });

impl SliceAttrs {
    /// The output shape (without the batch) for an input shaped `shape`, with, for every
    /// input axis, the positions it reads (`None` for an index out of range).
    pub fn plan(&self, shape: &[usize]) -> Option<(Vec<usize>, Vec<AxisWalk>)> {
        let mut out = Vec::new();
        let mut walk = Vec::new();
        for (len, ax) in shape.iter().zip(&self.axes[..self.rank.min(MAX_RANK)]) {
            match *ax {
                AxisIndex::All => {
                    out.push(*len);
                    walk.push((0, *len, 1));
                }
                AxisIndex::Range { start, stop, step } => {
                    let (first, count) = python_slice(*len, start, stop, step);
                    out.push(count);
                    walk.push((first, count, step));
                }
                AxisIndex::At(i) => walk.push((python_index(*len, i)?, 1, 1)),
            }
        }
        Some((out, walk))
    }
}

/// Which reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceKind {
    /// `keras.ops.mean`.
    Mean,
    /// `keras.ops.sum`.
    Sum,
    /// `keras.ops.max`.
    Max,
    /// `keras.ops.min`.
    Min,
    /// `keras.ops.any` (booleans).
    Any,
    /// `keras.ops.all` (booleans).
    All,
}
literal_unit_enum!(ReduceKind);

/// A reduction over one axis (`Mean(axis=1)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReduceAttrs {
    /// Which reduction.
    pub kind: ReduceKind,
    /// The axis, 0-based without the batch.
    pub axis: usize,
    /// Keep the axis with size 1.
    pub keepdims: bool,
}
literal_struct!(ReduceAttrs { kind, axis, keepdims });

/// `Stack(axis)`: tensors of one shape stacked along a new axis (0-based without the batch,
/// counted in the output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StackAttrs {
    /// The new axis.
    pub axis: usize,
}
literal_struct!(StackAttrs { axis });

/// Which comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareKind {
    /// `Equal`.
    Equal,
    /// `NotEqual`.
    NotEqual,
    /// `Less`.
    Less,
    /// `LessEqual`.
    LessEqual,
    /// `Greater`.
    Greater,
    /// `GreaterEqual`.
    GreaterEqual,
}
literal_unit_enum!(CompareKind);

impl CompareKind {
    /// Whether `a` compares so to `b`.
    pub fn holds(self, a: f32, b: f32) -> bool {
        match self {
            CompareKind::Equal => a == b,
            CompareKind::NotEqual => a != b,
            CompareKind::Less => a < b,
            CompareKind::LessEqual => a <= b,
            CompareKind::Greater => a > b,
            CompareKind::GreaterEqual => a >= b,
        }
    }
}

/// A comparison, element by element, of a tensor with a number (`NotEqual(0)`) or of two
/// tensors (`NotEqual()([a, b])`); the result is boolean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareAttrs {
    /// Which comparison.
    pub kind: CompareKind,
    /// The number compared with, or `None` for two tensors.
    pub value: Option<f32>,
}
literal_struct!(CompareAttrs { kind, value });

/// Which logical operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalKind {
    /// `LogicalAnd`.
    And,
    /// `LogicalOr`.
    Or,
    /// `LogicalXor`.
    Xor,
    /// `LogicalNot` (one input).
    Not,
}
literal_unit_enum!(LogicalKind);

/// Logic on boolean tensors of one shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogicalAttrs {
    /// Which operation.
    pub kind: LogicalKind,
}
literal_struct!(LogicalAttrs { kind });

/// `Cast(dtype)`: to floats (from booleans or integers) or to booleans (non-zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CastAttrs {
    /// The element type of the result.
    pub to: crate::DType,
    /// The element type of the input.
    pub from: crate::DType,
}
literal_struct!(CastAttrs { to, from });

/// `ExpandDims(axis)`: a new axis of size 1 (0-based without the batch, counted in the
/// output).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpandDimsAttrs {
    /// The new axis.
    pub axis: usize,
}
literal_struct!(ExpandDimsAttrs { axis });

/// The mask of a layer call given explicitly (`LSTM(8)(x, mask=m)`): input 0 passes on
/// unchanged with the mask of boolean input 1 (`[B, T]`), or with no mask at all when
/// there is no input 1 (`mask=None`, which is also what Keras's operations do).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetMaskAttrs {
    /// Whether input 1 is the mask (`false`: the mask is removed).
    pub given: bool,
}
literal_struct!(SetMaskAttrs { given });

impl RustLiteral for crate::DType {
    fn rust(&self) -> String {
        format!("::seqmodel::ir::DType::{self:?}")
    }
}

macro_rules! weightless {
    ($($ty:ty => [$($class:literal),*] $name:expr),* $(,)?) => {$(
        impl LayerAttrs for $ty {
            const KERAS: &'static [(&'static str, &'static [WeightVar])] = &[$(($class, &[])),*];

            fn class_name(&self) -> &'static str {
                #[allow(clippy::redundant_closure_call)]
                ($name)(self)
            }

            fn weight_shape(&self, _: &WeightVar) -> Option<Vec<usize>> {
                None
            }
        }
    )*};
}

weightless!(
    SliceAttrs => ["GetItem"] |_: &SliceAttrs| "GetItem",
    ReduceAttrs => ["Mean", "Sum", "Max", "Min", "Any", "All"] |a: &ReduceAttrs| match a.kind {
        ReduceKind::Mean => "Mean",
        ReduceKind::Sum => "Sum",
        ReduceKind::Max => "Max",
        ReduceKind::Min => "Min",
        ReduceKind::Any => "Any",
        ReduceKind::All => "All",
    },
    StackAttrs => ["Stack"] |_: &StackAttrs| "Stack",
    CompareAttrs => ["Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual"]
        |a: &CompareAttrs| match a.kind {
            CompareKind::Equal => "Equal",
            CompareKind::NotEqual => "NotEqual",
            CompareKind::Less => "Less",
            CompareKind::LessEqual => "LessEqual",
            CompareKind::Greater => "Greater",
            CompareKind::GreaterEqual => "GreaterEqual",
        },
    LogicalAttrs => ["LogicalAnd", "LogicalOr", "LogicalXor", "LogicalNot"] |a: &LogicalAttrs| match a.kind {
        LogicalKind::And => "LogicalAnd",
        LogicalKind::Or => "LogicalOr",
        LogicalKind::Xor => "LogicalXor",
        LogicalKind::Not => "LogicalNot",
    },
    CastAttrs => ["Cast"] |_: &CastAttrs| "Cast",
    ExpandDimsAttrs => ["ExpandDims"] |_: &ExpandDimsAttrs| "ExpandDims",
    SetMaskAttrs => ["SetMask"] |_: &SetMaskAttrs| "SetMask",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_slices_take_what_python_takes() {
        // Each line: `len start stop step : indices`, as Python printed them.
        let table = include_str!("../../tests/data/python_slices.txt");
        let num = |s: &str| (s != "_").then(|| s.parse::<i64>().expect("a number"));
        let mut lines = 0;
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            let (case, want) = line.split_once(':').expect("a colon");
            let f: Vec<&str> = case.split_whitespace().collect();
            let (len, start, stop, step) =
                (f[0].parse().expect("len"), num(f[1]), num(f[2]), num(f[3]).expect("step"));
            let want: Vec<usize> = want.split(',').filter_map(|s| s.trim().parse().ok()).collect();
            let (first, count) = python_slice(len, start, stop, step);
            let got: Vec<usize> = (0..count as i64).map(|k| (first as i64 + k * step) as usize).collect();
            assert_eq!(got, want, "{line}");
            lines += 1;
        }
        assert_eq!(lines, 2688);
    }

    #[test]
    fn indices_count_from_either_end() {
        assert_eq!(python_index(4, -1), Some(3));
        assert_eq!(python_index(4, 4), None);
        assert_eq!(python_index(4, -5), None);
    }
}
