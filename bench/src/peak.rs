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
