//! `seqc demo`: the seed autoencoder, checked, summarised and run on embedded synthetic data.

use std::process::ExitCode;
use std::time::Instant;

use ndarray::{Array3, ArrayD};
use seqmodel_runtime::{Model, Tensor, WeightStore};

use crate::Failure;

const AUTOENCODER: &str = include_str!("../../examples/autoencoder.seq");

/// Synthetic pressure/temperature series of `tanks` tanks over `steps` steps: slow cycles,
/// a per-tank offset and deterministic noise. No download, same numbers on every machine.
pub fn tank_series(tanks: usize, steps: usize) -> Array3<f32> {
    let mut noise = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        (noise >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    Array3::from_shape_fn((tanks, steps, 2), |(k, t, f)| {
        let phase = k as f32 * 0.7 + t as f32 * 0.15;
        let v = if f == 0 {
            0.6 * phase.sin() + 0.1 * k as f32
        } else {
            0.4 * (0.5 * phase).cos() - 0.05 * k as f32
        };
        v + 0.02 * next()
    })
}

/// Runs the demo.
pub fn run(color: bool) -> Result<ExitCode, Failure> {
    println!("1. The seed autoencoder, written in .seq (examples/autoencoder.seq), checks:\n");
    let compiled = seqmodel_compiler::compile(AUTOENCODER)
        .map_err(|e| Failure(e.render("autoencoder.seq", AUTOENCODER, color)))?;
    let program =
        compiled.program("Autoencoder").ok_or_else(|| Failure("no Autoencoder model".into()))?.clone();
    println!("{}", seqmodel_compiler::summary::render(&program));

    println!("2. A shape mistake is reported at the token, before anything runs:\n");
    let wrong = AUTOENCODER
        .replace("-> LSTM(24, return_sequences=true)\n      -> LSTM(16)", "-> LSTM(24)\n      -> LSTM(16)");
    match seqmodel_compiler::compile(&wrong) {
        Err(e) => println!("{}", e.render("autoencoder_wrong.seq", &wrong, color)),
        Ok(_) => return Err(Failure("the broken model unexpectedly checked".into())),
    }

    println!("3. The interpreter runs it on 32 synthetic tanks x 50 steps (pressure, temperature):\n");
    let x = tank_series(32, 50);
    let weights = WeightStore::random(&program, 7, 0.3);
    let mut model = Model::new(program, &weights)?;
    let input = Tensor::F32(x.clone().into_dyn());
    model.predict(std::slice::from_ref(&input))?; // warm-up
    let runs = 5;
    let start = Instant::now();
    let mut out: Vec<ArrayD<f32>> = Vec::new();
    for _ in 0..runs {
        out = model.predict(std::slice::from_ref(&input))?;
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
    let y = &out[0];
    let mse = (y - &x.clone().into_dyn()).mapv(|v| v * v).mean().unwrap_or(f32::NAN);
    let mean = x.mean().unwrap_or(0.0);
    let baseline = x.mapv(|v| (v - mean) * (v - mean)).mean().unwrap_or(f32::NAN);
    println!("   output shape {:?}, {ms:.2} ms per batch (one thread)", y.shape());
    println!("   reconstruction MSE with untrained (seeded) weights: {mse:.4}");
    println!("   naive baseline (predict the overall mean):          {baseline:.4}");
    println!("\n   Training (fit(X, X)) is the next milestone; Keras-trained weights load today:");
    println!("   seqc conformance ../shared/conformance  runs real Keras models against Keras's numbers.");
    Ok(ExitCode::SUCCESS)
}
