//! Numerical kernels: matrix products (through the `gemm` crate, which dispatches to
//! AVX-512 / AVX2+FMA / NEON / scalar code at run time) and activations.

pub mod activation;
mod matmul;
pub mod simd;

pub use matmul::{gemm_calls, matmul, matmul_reference};

/// The transpose of a row-major `rows × cols` matrix.
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = m[i * cols + j];
        }
    }
    t
}
