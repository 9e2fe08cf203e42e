//! Generated code for the seed examples and the Keras conformance models, built by
//! `build.rs` through the build API. Tests compare it with the interpreter and with Keras.

use seqmodel::ndarray::ArrayD;
use seqmodel::{RuntimeError, Tensor, WeightStore};

fn f32s(t: &Tensor) -> ArrayD<f32> {
    match t {
        Tensor::F32(a) => a.clone(),
        Tensor::I32(a) => a.mapv(|v| v as f32),
    }
}

fn i32s(t: &Tensor) -> ArrayD<i32> {
    match t {
        Tensor::I32(a) => a.clone(),
        Tensor::F32(a) => a.mapv(|v| v as i32),
    }
}

include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// The README's snippets, run as doc tests of a crate that uses seqmodel as a user would
/// (with the `keras` feature, beside `models/`).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
