//! The machine's single-core floating-point peak, measured with independent FMA chains (the
//! denominator of "% of peak"). Twelve chains hide the FMA latency on current x86 cores.

use std::time::Instant;

use pulp::{Simd, WithSimd};

const CHAINS: usize = 12;

struct FmaChains {
    iterations: usize,
}

impl WithSimd for FmaChains {
    type Output = (f32, usize);
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> Self::Output {
        let a = s.splat_f32s(std::hint::black_box(0.999_999));
        let b = s.splat_f32s(std::hint::black_box(1e-7));
        let mut acc = [s.splat_f32s(1.0); CHAINS];
        for _ in 0..self.iterations {
            for v in acc.iter_mut() {
                *v = s.mul_add_f32s(*v, a, b);
            }
        }
        let mut total = s.splat_f32s(0.0);
        for v in acc {
            total = s.add_f32s(total, v);
        }
        let lanes = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        (s.reduce_sum_f32s(total), lanes)
    }
}

/// Single-precision GFLOP/s of one core (an FMA counts 2), best of several runs on the
/// widest instruction set this CPU has.
pub fn single_core_gflops() -> f64 {
    let iterations = 20_000_000;
    let mut best = f64::INFINITY;
    let mut lanes = 1;
    for _ in 0..5 {
        let t0 = Instant::now();
        let (sum, l) = pulp::Arch::new().dispatch(FmaChains { iterations: std::hint::black_box(iterations) });
        let dt = t0.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        lanes = l;
        best = best.min(dt);
    }
    (iterations * CHAINS * lanes * 2) as f64 / best / 1e9
}

/// Floats of the buffer that [`l2_read_gbs`] reads: 256 KiB, more than any L1 cache and
/// within every current L2 (512 KiB to 2 MiB per core).
const L2_FLOATS: usize = 64 * 1024;

struct SumVectors<'a> {
    data: &'a [f32],
    passes: usize,
}

impl WithSimd for SumVectors<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        let (vectors, _) = S::as_simd_f32s(self.data);
        let mut acc = [s.splat_f32s(0.0); 8];
        for _ in 0..self.passes {
            for chunk in vectors.chunks_exact(8) {
                for (a, v) in acc.iter_mut().zip(chunk) {
                    *a = s.add_f32s(*a, *v);
                }
            }
        }
        let mut total = s.splat_f32s(0.0);
        for a in acc {
            total = s.add_f32s(total, a);
        }
        s.reduce_sum_f32s(total)
    }
}

/// Read bandwidth of one core from its L2 cache in GB/s: a 256 KiB buffer summed with eight
/// independent vector accumulators, best of several runs (the denominator of the weight
/// traffic in [`step_floor_ms`]).
pub fn l2_read_gbs() -> f64 {
    let data: Vec<f32> = (0..L2_FLOATS).map(|i| (i % 7) as f32).collect();
    let passes = 2000;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        let sum =
            pulp::Arch::new().dispatch(SumVectors { data: &data, passes: std::hint::black_box(passes) });
        best = best.min(t0.elapsed().as_secs_f64());
        std::hint::black_box(sum);
    }
    (L2_FLOATS * 4 * passes) as f64 / best / 1e9
}

/// The least time `steps` one-step calls can take on one core: per step, the larger of the
/// weights read (`weight_bytes` over the L2 read bandwidth `l2_gbs`) and the arithmetic
/// (`gflop_per_step` over the FMA peak `peak_gflops`).
pub fn step_floor_ms(
    steps: usize,
    weight_bytes: usize,
    gflop_per_step: f64,
    l2_gbs: f64,
    peak_gflops: f64,
) -> f64 {
    let bytes_s = weight_bytes as f64 / (l2_gbs * 1e9);
    let flops_s = gflop_per_step / peak_gflops;
    steps as f64 * bytes_s.max(flops_s) * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_larger_bound_per_step() {
        // 1 MB per step at 100 GB/s is 10 µs; 1 MFLOP at 100 GFLOP/s is 10 µs too.
        assert!((step_floor_ms(200, 1_000_000, 1e-3, 100.0, 100.0) - 2.0).abs() < 1e-9);
        // Arithmetic-bound: 4 MFLOP per step.
        assert!((step_floor_ms(10, 1_000_000, 4e-3, 100.0, 100.0) - 0.4).abs() < 1e-9);
    }
}
