//! Times the fused LSTM cell (`LstmRows`) and the exponential over one row of units:
//! `cargo run --release -p seqmodel-bench --example cell_speed`.

use std::time::Instant;

use seqmodel::__private::kernels::simd::{LstmRows, Unary, map_in_place};

fn main() {
    for u in [64usize, 128, 256] {
        let xp: Vec<f32> = (0..4 * u).map(|i| ((i % 13) as f32 - 6.0) * 0.3).collect();
        let rec: Vec<f32> = (0..4 * u).map(|i| ((i % 7) as f32 - 3.0) * 0.2).collect();
        let c_prev: Vec<f32> = (0..u).map(|i| ((i % 5) as f32 - 2.0) * 0.4).collect();
        let (mut c_new, mut h_new) = (vec![0.0f32; u], vec![0.0f32; u]);
        let arch = pulp::Arch::new();
        let reps = 200_000;
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                arch.dispatch(LstmRows {
                    units: u,
                    xp: std::hint::black_box(&xp),
                    xp_stride: 4 * u,
                    rec: &rec,
                    c_prev: &c_prev,
                    c_new: &mut c_new,
                    h_new: &mut h_new,
                    record: None,
                });
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let mut data = vec![0.5f32; 4 * u];
        let mut best_exp = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                map_in_place(Unary::Exp, std::hint::black_box(&mut data));
                data.fill(0.5);
            }
            best_exp = best_exp.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        println!(
            "units {u:>4}: LSTM cell {:>7.1} ns ({:.2} ns per unit); exp of {} values (with refill) {:>7.1} ns",
            best * 1e9,
            best * 1e9 / u as f64,
            4 * u,
            best_exp * 1e9
        );
    }
}
