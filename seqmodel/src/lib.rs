//! seqmodel: write recurrent models in `.seq`, check every shape before anything runs, and
//! run them with Keras's numbers.
//!
//! This facade is what users depend on. Today it re-exports the runtime (interpreter, weight
//! store, kernels); the `seqmodel!` macro and generated model types join it next.

pub use seqmodel_runtime::*;
