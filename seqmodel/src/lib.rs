//! seqmodel: write recurrent models in `.seq`, check every shape while `cargo build` runs,
//! and run or train them with Keras's numbers.
//!
//! ```
//! seqmodel::seqmodel! {
//!     /// A many-to-one LSTM.
//!     model Tiny(x: [T, 3]) -> [1] {
//!         x -> LSTM(4) -> Dense(1)
//!     }
//! }
//!
//! use seqmodel::ndarray::{Array2, Array3};
//!
//! let mut m = Tiny::random(7);
//! // Rank-typed: `[T, 3]` with the batch is an `Array3` (or any view of one) in, and the
//! // `[1]` output with its batch an `Array2` out.
//! let x = Array3::<f32>::zeros((2, 5, 3));
//! let y: Array2<f32> = m.predict(&x).unwrap();
//! assert_eq!(y.shape(), &[2, 1]);
//! // `run` returns a view into the model's buffers; `predict_into` writes into yours.
//! let mut out = Array2::<f32>::zeros((2, 1));
//! m.predict_into(x.view(), &mut out).unwrap();
//! assert_eq!(out, y);
//! assert_eq!(Tiny::PARAMS, 4 * (3 * 4 + 4 * 4 + 4) + 4 + 1);
//! ```
//!
//! # Many streams
//!
//! A stateful model stepped one time step per call also serves many independent streams
//! from one copy of its weights: [`Streams`] holds their states, and `step_streams` steps
//! them all as one batch, reading the model only (so threads can share it).
//!
//! ```
//! seqmodel::seqmodel! {
//!     model Gen(x: [T, 2]) -> [T, 2] where batch = 1 {
//!         x -> LSTM(4, stateful=true, return_sequences=true) -> TimeDistributed(Dense(2))
//!     }
//! }
//!
//! let model = Gen::random(7);
//! let mut streams = model.streams(3);
//! let x = seqmodel::ndarray::Array2::<f32>::ones((3, 2));
//! let y = model.step_streams(&mut streams, &x).unwrap();
//! assert_eq!(y.shape(), &[3, 2]); // one row per stream
//! streams.reset(1).unwrap(); // stream 1 starts over
//! streams.resize(4); // a fourth stream joins, from zeros
//!
//! // The model's own stream (its batch is 1), one `[batch, features]` step per call:
//! let mut one = Gen::random(7);
//! let y: seqmodel::ndarray::Array2<f32> = one.step(&seqmodel::ndarray::arr2(&[[0.5, -0.5]])).unwrap();
//! assert_eq!(y.shape(), &[1, 2]);
//! // or on plain arrays, allocating nothing:
//! one.reset_states();
//! let z: &[f32; 2] = one.step_one(&[0.5, -0.5]).unwrap();
//! assert_eq!(&z[..], y.as_slice().unwrap());
//! ```

#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "std")]
pub use ndarray;
pub use seqmodel_kernels::step::NonFinite;
pub use seqmodel_macros::seqmodel;
#[cfg(feature = "std")]
pub use seqmodel_runtime::{
    Architecture, Model, Result, RuntimeError, Streams, Tensor, TensorView, WeightStore, ir, num_threads,
    set_num_threads, train,
};

/// What generated code calls: not public API (no stability promise), hidden from the docs,
/// as serde and thiserror do.
#[doc(hidden)]
pub mod __private {
    /// What `no_std` generated code calls.
    pub use seqmodel_kernels as embedded;
    #[cfg(feature = "std")]
    pub use seqmodel_runtime::{direct, exec, kernels};

    /// Loads a Keras `.keras` or `.h5` file's weights for a model with these `(key, shape)`
    /// specs, matched by Keras's weight order with every shape checked (generated types
    /// call this from `from_keras`, which exists only with the `keras` feature).
    #[cfg(feature = "keras")]
    pub fn load_keras_weights(
        path: &std::path::Path,
        specs: &[(&str, &[usize])],
    ) -> crate::Result<crate::WeightStore> {
        seqmodel_keras::load_weights(path, specs).map_err(|e| {
            crate::RuntimeError::weight_file_from(
                format!("{}: cannot load its Keras weights", path.display()),
                e,
            )
        })
    }

    /// Expands to its items when seqmodel has the `keras` feature, to nothing otherwise
    /// (so a generated type's `from_keras` is a compile error without it, not a run-time one).
    #[cfg(feature = "keras")]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __if_keras {
        ($($item:tt)*) => { $($item)* };
    }

    /// Expands to its items when seqmodel has the `keras` feature, to nothing otherwise.
    #[cfg(not(feature = "keras"))]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __if_keras {
        ($($item:tt)*) => {};
    }

    #[cfg(feature = "std")]
    pub use crate::__if_keras as if_keras;
}

/// Includes the code that `seqmodel_compiler::build::Builder` generated into `OUT_DIR` for
/// the model file with this stem.
#[macro_export]
macro_rules! include_model {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $name, ".rs"));
    };
}
