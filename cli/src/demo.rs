//! `seqc demo`: the seed autoencoder, checked, summarised and trained (fit(X, X)) on
//! embedded synthetic multi-tank data, with a loss curve and saved weights.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use ndarray::Array3;
use seqmodel_runtime::train::{FitOptions, Loss, Optimizer, Trainer};
use seqmodel_runtime::{Tensor, WeightStore};

use crate::Failure;

const AUTOENCODER: &str = include_str!("../../examples/autoencoder.seq");

/// Synthetic pressure/temperature series of `tanks` tanks over `steps` steps: slow cycles
/// with per-tank phase, level and amplitude, plus deterministic noise. No download, the same
/// numbers on every machine.
pub fn tank_series(tanks: usize, steps: usize) -> Array3<f32> {
    let mut noise = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        (noise >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    Array3::from_shape_fn((tanks, steps, 2), |(k, t, f)| {
        let phase = (k % 7) as f32 * 0.9 + t as f32 * 0.25;
        let level = ((k % 5) as f32 - 2.0) * 0.08;
        let amp = 0.3 + 0.05 * (k % 3) as f32;
        let v = if f == 0 { level + amp * phase.sin() } else { -level + 0.6 * amp * (phase - 0.8).cos() };
        v + 0.01 * next()
    })
}

fn mse(a: &ndarray::ArrayD<f32>, b: &ndarray::ArrayD<f32>) -> f32 {
    (a - b).mapv(|v| v * v).mean().unwrap_or(f32::NAN)
}

/// Runs the demo.
pub fn run(epochs: usize, color: bool) -> Result<ExitCode, Failure> {
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

    let (tanks, steps) = (96, 24);
    println!(
        "3. fit(X, X) on {tanks} synthetic tanks x {steps} steps (pressure, temperature), Adam(0.01), batch 16, {epochs} epochs:\n"
    );
    let x = tank_series(tanks, steps).into_dyn();
    let train_x = x.slice(ndarray::s![..80, .., ..]).to_owned().into_dyn();
    let test_x = x.slice(ndarray::s![80.., .., ..]).to_owned().into_dyn();
    let weights = WeightStore::random(&program, 7, 0.15);
    let mut trainer = Trainer::new(program, weights, Loss::MeanSquaredError, Optimizer::adam(0.01))?;
    let opts = FitOptions {
        epochs,
        batch_size: 16,
        verbose: crate::train_cmd::auto_verbosity(),
        ..FitOptions::default()
    };
    let start = Instant::now();
    let history = trainer.fit(&train_x, &train_x, &opts)?;
    let secs = start.elapsed().as_secs_f64();
    let mut model = trainer.to_model()?;
    let recon = model.predict(&[Tensor::F32(test_x.clone())])?.remove(0);
    let mean = train_x
        .mean_axis(ndarray::Axis(0))
        .and_then(|m| m.mean_axis(ndarray::Axis(0)))
        .ok_or_else(|| Failure("no data".into()))?;
    let baseline = test_x.clone() * 0.0 + &mean;
    println!(
        "   trained {} epochs in {secs:.1} s; loss {:.5} -> {:.5}",
        history.loss.len(),
        history.loss.first().copied().unwrap_or(f32::NAN),
        history.loss.last().copied().unwrap_or(f32::NAN)
    );
    println!("   held-out reconstruction MSE: {:.5}", mse(&recon, &test_x));
    println!("   naive baseline (per-feature mean of the training data): {:.5}", mse(&baseline, &test_x));

    let dir = crate::train_cmd::fresh_dir(Path::new("seqmodel-demo"))?;
    let weights_path = dir.join("autoencoder.safetensors");
    trainer.weights().save(&weights_path, false)?;
    let plot_path = dir.join("loss.svg");
    crate::commands::write_new(
        &plot_path,
        crate::plot::loss_svg("seed autoencoder: training loss (mse)", &history.loss).as_bytes(),
    )?;
    println!("\n   wrote {} and {}", weights_path.display(), plot_path.display());
    Ok(ExitCode::SUCCESS)
}
