//! The tensors the interpreter passes between nodes: f32 or i32 arrays, batch first.

use ndarray::{ArrayD, ArrayViewD};

/// A batch-first tensor of f32 values or i32 token ids.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    /// Float data.
    F32(ArrayD<f32>),
    /// Integer token ids.
    I32(ArrayD<i32>),
}

impl Tensor {
    /// The shape, batch first.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::I32(a) => a.shape(),
        }
    }

    /// The element type's name.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            Tensor::F32(_) => "f32",
            Tensor::I32(_) => "i32",
        }
    }

    /// The float array, or `None` for token ids.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Some(a),
            Tensor::I32(_) => None,
        }
    }

    /// The float array (consuming), or `None` for token ids.
    pub fn into_f32(self) -> Option<ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Some(a),
            Tensor::I32(_) => None,
        }
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Self {
        Tensor::F32(a)
    }
}

impl From<ArrayD<i32>> for Tensor {
    fn from(a: ArrayD<i32>) -> Self {
        Tensor::I32(a)
    }
}

impl Tensor {
    /// A borrowed view of the data.
    pub fn view(&self) -> TensorView<'_> {
        match self {
            Tensor::F32(a) => TensorView::F32(a.view()),
            Tensor::I32(a) => TensorView::I32(a.view()),
        }
    }
}

/// A borrowed batch-first tensor: what the allocation-free entry points take.
#[derive(Debug, Clone)]
pub enum TensorView<'a> {
    /// Float data.
    F32(ArrayViewD<'a, f32>),
    /// Integer token ids.
    I32(ArrayViewD<'a, i32>),
}

impl TensorView<'_> {
    /// The same view with a shorter lifetime (views are invariant in their lifetime, so
    /// mixing views of different origins needs this).
    pub fn reborrow(&self) -> TensorView<'_> {
        match self {
            TensorView::F32(a) => TensorView::F32(a.view()),
            TensorView::I32(a) => TensorView::I32(a.view()),
        }
    }

    /// The shape, batch first.
    pub fn shape(&self) -> &[usize] {
        match self {
            TensorView::F32(a) => a.shape(),
            TensorView::I32(a) => a.shape(),
        }
    }

    /// The element type's name.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            TensorView::F32(_) => "f32",
            TensorView::I32(_) => "i32",
        }
    }
}

impl<'a> From<ArrayViewD<'a, f32>> for TensorView<'a> {
    fn from(a: ArrayViewD<'a, f32>) -> Self {
        TensorView::F32(a)
    }
}

impl<'a> From<ArrayViewD<'a, i32>> for TensorView<'a> {
    fn from(a: ArrayViewD<'a, i32>) -> Self {
        TensorView::I32(a)
    }
}
