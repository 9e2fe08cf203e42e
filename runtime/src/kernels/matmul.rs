//! Row-major single-precision matrix product.
#![allow(unsafe_code)]

/// `c = beta_c * c + a · b` for row-major `a` (m×k), `b` (k×n), `c` (m×n). With
/// `accumulate == false`, `c` is overwritten.
///
/// # Panics
/// If a slice is shorter than its matrix (a programming error inside the runtime).
pub fn matmul(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matmul: slices too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the assertion above guarantees that `a` holds m×k, `b` k×n and `c` m×n
    // row-major elements, so every address gemm forms from these strides (row stride =
    // number of columns, column stride = 1) lies inside the slices; `c` is borrowed mutably
    // and cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The naive triple loop, the reference the optimised path is tested against.
pub fn matmul_reference(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                s += a[i * k + p] as f64 * b[p * n + j] as f64;
            }
            let prev = if accumulate { c[i * n + j] as f64 } else { 0.0 };
            c[i * n + j] = (prev + s) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn gemm_matches_the_naive_loop(
            m in 1usize..20, k in 0usize..40, n in 1usize..40, acc: bool, seed in 0u64..1000,
        ) {
            let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let mut next = move || {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            };
            let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| next()).collect();
            let mut c1 = c0.clone();
            let mut c2 = c0.clone();
            matmul(m, k, n, &a, &b, &mut c1, acc);
            matmul_reference(m, k, n, &a, &b, &mut c2, acc);
            for (x, y) in c1.iter().zip(&c2) {
                prop_assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "{x} vs {y}");
            }
        }
    }
}
