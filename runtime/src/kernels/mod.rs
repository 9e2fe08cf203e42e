//! Numerical kernels: matrix products (a packed SIMD micro-kernel) and activations, on `pulp`,
//! which dispatches to AVX-512 / AVX2+FMA / NEON / scalar code at run time.

pub mod activation;
mod aligned;
mod matmul;
mod packed;
/// The SIMD kernels on slices, from the `no_std` crate `seqmodel-kernels`.
pub use seqmodel_kernels as simd;

pub use matmul::{
    FixedRhs, matmul, matmul_prepacked, matmul_prepacked_lhs, matmul_reference, matmul_transposed_a,
    matmul_transposed_b,
};
pub(crate) use matmul::{THEN_ROWS, splits_rows};
pub use packed::{
    Lhs, MR, PackedB, RhsData, Start, matmul_packed, matmul_packed_lhs, matmul_packed_with, matmul_row_major,
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
    // In square tiles whose rows and columns both stay in cache: row by row, every write of
    // a large matrix's transpose touched another cache line (a tenth of a GRU's backward).
    const TILE: usize = 32;
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                for j in j0..(j0 + TILE).min(cols) {
                    t[j * rows + i] = m[i * cols + j];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Tiles with ragged edges on both sides transpose like the definition.
        #[test]
        fn the_tiled_transpose_is_the_transpose(rows in 0usize..80, cols in 0usize..80) {
            let m: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = transpose(&m, rows, cols);
            for i in 0..rows {
                for j in 0..cols {
                    prop_assert_eq!(t[j * rows + i], m[i * cols + j]);
                }
            }
        }

        /// The lane sums against sums in f64.
        #[test]
        fn lane_sums_match_f64(values in proptest::collection::vec(-1.0f32..1.0, 0..200)) {
            let other: Vec<f32> = values.iter().rev().copied().collect();
            let want_sum: f64 = values.iter().map(|v| (*v as f64).exp()).sum();
            let want_dot: f64 = values.iter().zip(&other).map(|(a, b)| *a as f64 * *b as f64).sum();
            let got_sum = activation::sum_map(&values, f32::exp) as f64;
            let got_dot = activation::dot(&values, &other) as f64;
            prop_assert!((got_sum - want_sum).abs() <= 1e-5 * (1.0 + want_sum.abs()), "{got_sum} vs {want_sum}");
            prop_assert!((got_dot - want_dot).abs() <= 1e-5 * (1.0 + values.len() as f64), "{got_dot} vs {want_dot}");
        }
    }
}
