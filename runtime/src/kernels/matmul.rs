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
    if m == 1 {
        // A batch-1 step: the SIMD vector-matrix kernel, without gemm's dispatch.
        super::simd::gemv(&a[..k], &b[..k * n], &mut c[..n], accumulate);
        return;
    }
    let threads = crate::num_threads().min(m / MIN_ROWS_PER_THREAD);
    if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
        // Large products: rows split across scoped threads, the calling thread taking the
        // last share. The helpers end with the product, so no idle worker spins on a core
        // the serial parts of the model need.
        let per = m.div_ceil(threads);
        std::thread::scope(|scope| {
            let mut rows = c[..m * n].chunks_mut(per * n).zip(a[..m * k].chunks(per * k)).peekable();
            while let Some((c_rows, a_rows)) = rows.next() {
                let r = c_rows.len() / n;
                if rows.peek().is_some() {
                    scope.spawn(move || blocked(r, k, n, a_rows, b, c_rows, accumulate));
                } else {
                    blocked(r, k, n, a_rows, b, c_rows, accumulate);
                }
            }
        });
        return;
    }
    blocked(m, k, n, a, b, c, accumulate);
}

/// One thread's product through `gemm`, in blocks that need no packing buffer.
fn blocked(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matmul: slices too short");
    // gemm packs a row-major right-hand side, or a left-hand side whose rows are not
    // contiguous, into a freshly allocated buffer. So it is called for the transposed product
    // Cᵀ (n×m) = Bᵀ (n×k) · Aᵀ (k×m), whose left factor Bᵀ is column-major as stored, in
    // blocks small enough that gemm needs no packing: blocks of at most COLUMN_BLOCK columns
    // of B (below its packing threshold) and ROW_BLOCK rows of A (so that the unpacked rows
    // of A a block reads stay in the L2 cache).
    static TUNED: std::sync::Once = std::sync::Once::new();
    TUNED.call_once(|| gemm::set_rhs_packing_threshold(256));
    let row_block = (ROW_BLOCK_FLOATS / k).clamp(MIN_ROW_BLOCK, m.max(MIN_ROW_BLOCK));
    let mut row = 0;
    while row < m {
        let rows = (m - row).min(row_block);
        let mut col = 0;
        while col < n {
            let cols = (n - col).min(COLUMN_BLOCK);
            // SAFETY: the assertion at the top guarantees that `a` holds m×k, `b` k×n and `c` m×n
            // row-major elements. The block covers rows row..row+rows of `a` and `c` and
            // columns col..col+cols of `b` and `c`: element (j, p) of Bᵀ is b[p·n + col + j]
            // (row stride 1, column stride n), element (p, i) of Aᵀ is a[(row + i)·k + p] (row
            // stride 1, column stride k), and element (j, i) of Cᵀ is c[(row + i)·n + col + j]
            // (row stride 1, column stride n); with j < cols ≤ n - col, i < rows ≤ m - row and
            // p < k every address lies inside its slice. `c` is borrowed mutably and cannot
            // alias `a` or `b`.
            GEMM_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            unsafe {
                gemm::gemm(
                    cols,
                    rows,
                    k,
                    c.as_mut_ptr().add(row * n + col),
                    n as isize,
                    1,
                    accumulate,
                    b.as_ptr().add(col),
                    n as isize,
                    1,
                    a.as_ptr().add(row * k),
                    k as isize,
                    1,
                    1.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            col += cols;
        }
        row += rows;
    }
}

static GEMM_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many times [`matmul`] has called `gemm` in this process (each call makes one small
/// bookkeeping allocation inside gemm 0.19; the allocation test accounts for them).
pub fn gemm_calls() -> usize {
    GEMM_CALLS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Rows of A per block: this many floats of A (512 KiB, half of a 1 MiB L2).
const ROW_BLOCK_FLOATS: usize = 128 * 1024;

/// At least this many rows per block (so that short, wide products stay whole).
const MIN_ROW_BLOCK: usize = 64;

/// Each thread gets at least this many rows.
const MIN_ROWS_PER_THREAD: usize = 32;

/// Products with at least this many multiply-adds are split across threads.
const PARALLEL_MIN_MACS: usize = 1 << 25;

/// Widest column block per gemm call (a multiple of every SIMD width; below gemm's packing
/// threshold).
const COLUMN_BLOCK: usize = 2048;

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

    #[test]
    fn threaded_products_match_the_naive_loop() {
        // Large enough to split across threads (over 2^25 multiply-adds), with uneven shares.
        let (m, k, n) = (513, 256, 256);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5).collect();
        let mut want = vec![0.25f32; m * n];
        matmul_reference(m, k, n, &a, &b, &mut want, true);
        for threads in [1, 2, 3] {
            crate::set_num_threads(threads);
            let mut got = vec![0.25f32; m * n];
            matmul(m, k, n, &a, &b, &mut got, true);
            for (x, y) in got.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-3, "{threads} threads: {x} vs {y}");
            }
        }
        crate::set_num_threads(0);
    }

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
