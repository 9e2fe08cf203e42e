//! Numerical kernels: matrix products (through the `gemm` crate, which dispatches to
//! AVX-512 / AVX2+FMA / NEON / scalar code at run time) and activations.

pub mod activation;
mod matmul;
pub mod simd;

pub use matmul::{matmul, matmul_reference};
