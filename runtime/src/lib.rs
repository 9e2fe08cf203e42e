//! The seqmodel runtime: numerical kernels, the forward pass of every layer with Keras's
//! semantics, an interpreter of the checked IR, and weight storage. It depends on neither
//! syn, quote nor pest, so it stays cheap in users' builds.

pub mod error;
// `direct`, `exec`, `kernels` and `layers` are what the `seqmodel` facade and generated code
// build on (through `seqmodel::__private`), not public API: hidden from the docs.
#[doc(hidden)]
pub mod direct;
#[doc(hidden)]
pub mod exec;
pub mod files;
mod interpreter;
#[doc(hidden)]
pub mod kernels;
#[doc(hidden)]
pub mod layers;
mod memory;
mod parallel;
mod pool;
mod streams;
mod tensor;
pub mod train;
mod weights;

pub use error::{Result, RuntimeError};
pub use interpreter::Model;
pub use parallel::{num_threads, set_num_threads};
pub use seqmodel_ir as ir;
pub use streams::Streams;
pub use tensor::{Tensor, TensorView};
pub use weights::{Architecture, WeightStore};
