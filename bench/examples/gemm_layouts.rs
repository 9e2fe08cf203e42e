//! Times the runtime's `matmul` (packing the right factor block by block), `FixedRhs`
//! (laid out ahead, as recurrent and Dense kernels are) and a direct row-major `gemm` call (the `gemm`
//! crate, as a baseline) on the products of the benchmark configs.
//! `cargo run --release -p seqmodel-bench --example gemm_layouts [threads]`

use std::time::Instant;

#[allow(unsafe_code)]
fn direct(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the slices hold m×k, k×n and m×n row-major elements (asserted above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
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

fn best(mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < 0.5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    seqmodel::set_num_threads(threads);
    println!("runtime matmul at {threads} thread(s); direct gemm always at 1");
    for (m, k, n) in [
        (1, 8, 256),
        (1, 64, 256),
        (1, 128, 512),
        (32, 64, 256),
        (256, 8, 256),
        (256, 64, 256),
        (16, 512, 1536),
        (256, 256, 1024),
        (1600, 8, 256),
        (512, 128, 10000),
        (12800, 256, 1024),
        (256, 12800, 1024),
        (12800, 1024, 256),
        (512, 512, 1536),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0.0f32; m * n];
        let flop = 2.0 * (m * k * n) as f64;
        let ours = best(|| seqmodel::__private::kernels::matmul(m, k, n, &a, &b, &mut c, false));
        let fixed = seqmodel::__private::kernels::FixedRhs::new(k, n, &b);
        let prepacked = best(|| fixed.product(m, &a, &mut c));
        let plain = best(|| direct(m, k, n, &a, &b, &mut c));
        println!(
            "{m:>6}x{k:>4}x{n:>6}  matmul {:>6.1}  prepacked {:>6.1}  gemm crate {:>6.1} GFLOP/s",
            flop / ours / 1e9,
            flop / prepacked / 1e9,
            flop / plain / 1e9
        );
    }
}
