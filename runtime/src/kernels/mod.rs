//! Numerical kernels: matrix products (a packed SIMD micro-kernel) and activations, on `pulp`,
//! which dispatches to AVX-512 / AVX2+FMA / NEON / scalar code at run time.

pub mod activation;
mod aligned;
mod matmul;
mod packed;
/// The SIMD kernels on slices, from the `no_std` crate `seqmodel-kernels`.
pub use seqmodel_kernels as simd;

pub use matmul::{FixedRhs, matmul, matmul_prepacked, matmul_reference, matmul_transposed_a};
pub use packed::{
    Lhs, MR, PackedB, Start, matmul_packed, matmul_packed_lhs, matmul_packed_with, matmul_row_major,
    matmul_row_major_lhs, matmul_row_major_with, panel_width,
};

/// The transpose of a row-major `rows × cols` matrix.
pub fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    transpose_into(m, rows, cols, &mut t);
    t
}

/// Writes the transpose of the row-major `rows × cols` matrix `m` into `t` (`cols × rows`).
///
/// # Panics
/// If `m` or `t` is shorter than `rows · cols`.
pub fn transpose_into(m: &[f32], rows: usize, cols: usize, t: &mut [f32]) {
    assert!(m.len() >= rows * cols && t.len() >= rows * cols, "transpose: slices too short");
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = m[i * cols + j];
        }
    }
}
