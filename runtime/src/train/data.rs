//! What training takes as inputs and targets: an ndarray (owned or a view, any rank) per
//! model input or output, a tuple of them for several, or already-built [`Tensor`]s.

use std::borrow::Cow;

use ndarray::{ArrayBase, Data, Dimension};

use crate::Tensor;

/// Arrays for [`Trainer::fit`](super::Trainer::fit) and friends: one per model input (or
/// output, for targets), batch first.
///
/// Implemented for any `f32` or `i32` ndarray (owned, borrowed or a view, any rank), for
/// tuples of up to four of them (a model with several inputs), and for slices and vectors
/// of [`Tensor`] (borrowed without a copy).
///
/// ```
/// use ndarray::{Array2, Array3};
/// use seqmodel_runtime::train::IntoTensors;
/// let x = Array3::<f32>::zeros((4, 10, 2));
/// let w = Array2::<i32>::zeros((4, 10));
/// assert_eq!(x.view().into_tensors().len(), 1);
/// assert_eq!((&x, w.view()).into_tensors().len(), 2);
/// ```
pub trait IntoTensors<'a> {
    /// The tensors, borrowed when they already are tensors.
    fn into_tensors(self) -> Cow<'a, [Tensor]>;
}

impl<'a> IntoTensors<'a> for &'a [Tensor] {
    fn into_tensors(self) -> Cow<'a, [Tensor]> {
        Cow::Borrowed(self)
    }
}

impl<'a, const N: usize> IntoTensors<'a> for &'a [Tensor; N] {
    fn into_tensors(self) -> Cow<'a, [Tensor]> {
        Cow::Borrowed(self)
    }
}

impl<'a> IntoTensors<'a> for &'a Vec<Tensor> {
    fn into_tensors(self) -> Cow<'a, [Tensor]> {
        Cow::Borrowed(self)
    }
}

impl<'a> IntoTensors<'a> for Vec<Tensor> {
    fn into_tensors(self) -> Cow<'a, [Tensor]> {
        Cow::Owned(self)
    }
}

/// One array of one element type as a tensor.
pub trait IntoTensor {
    /// The tensor (a copy in standard layout).
    fn into_tensor(self) -> Tensor;
}

/// The element types a tensor holds: `f32` data and `i32` token ids.
pub trait Element: Clone + Sized {
    /// The tensor holding `a`.
    fn tensor(a: ndarray::ArrayD<Self>) -> Tensor;
}

impl Element for f32 {
    fn tensor(a: ndarray::ArrayD<f32>) -> Tensor {
        Tensor::F32(a)
    }
}

impl Element for i32 {
    fn tensor(a: ndarray::ArrayD<i32>) -> Tensor {
        Tensor::I32(a)
    }
}

impl<A: Element, S: Data<Elem = A>, D: Dimension> IntoTensor for ArrayBase<S, D> {
    fn into_tensor(self) -> Tensor {
        let a = self.into_owned().into_dyn();
        A::tensor(if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() })
    }
}

impl<A: Element, S: Data<Elem = A>, D: Dimension> IntoTensor for &ArrayBase<S, D> {
    fn into_tensor(self) -> Tensor {
        A::tensor(self.view().into_dyn().as_standard_layout().into_owned())
    }
}

impl<'a, A: Element, S: Data<Elem = A>, D: Dimension> IntoTensors<'a> for ArrayBase<S, D> {
    fn into_tensors(self) -> Cow<'a, [Tensor]> {
        Cow::Owned(vec![self.into_tensor()])
    }
}

impl<'a, A: Element, S: Data<Elem = A>, D: Dimension> IntoTensors<'a> for &ArrayBase<S, D> {
    fn into_tensors(self) -> Cow<'a, [Tensor]> {
        Cow::Owned(vec![self.into_tensor()])
    }
}

macro_rules! tuple_tensors {
    ($($t:ident),+) => {
        impl<'a, $($t: IntoTensor),+> IntoTensors<'a> for ($($t,)+) {
            #[allow(non_snake_case)]
            fn into_tensors(self) -> Cow<'a, [Tensor]> {
                let ($($t,)+) = self;
                Cow::Owned(vec![$($t.into_tensor()),+])
            }
        }
    };
}

tuple_tensors!(A);
tuple_tensors!(A, B);
tuple_tensors!(A, B, C);
tuple_tensors!(A, B, C, D);
