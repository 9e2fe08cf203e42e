//! Training cases of `seqc conformance`: replay Keras's training loop from the case's
//! description and compare per-step losses, trained weights and the trained model's outputs.

use std::path::Path;

use ndarray::{ArrayD, Axis, Slice};
use seqmodel_runtime::Tensor;
use seqmodel_runtime::train::Trainer;
use serde_json::Value as J;

use crate::conformance::Outcome;
use crate::{Failure, npy};

fn slice(t: &Tensor, axis: usize, r: std::ops::Range<usize>) -> Tensor {
    match t {
        Tensor::F32(a) => Tensor::F32(a.slice_axis(Axis(axis), Slice::from(r)).to_owned()),
        Tensor::I32(a) => Tensor::I32(a.slice_axis(Axis(axis), Slice::from(r)).to_owned()),
    }
}

fn max_abs(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, |m, e| if e.is_nan() { f32::INFINITY } else { m.max(e) })
}

/// Runs one training case.
pub fn run(dir: &Path, case: &J) -> Result<Outcome, Failure> {
    let train = &case["train"];
    let tol = &train["tolerance"];
    let tol_loss = tol["losses_max_rel"].as_f64().unwrap_or(1e-4) as f32;
    let tol_w = tol["trained_weights_max_abs"].as_f64().unwrap_or(1e-4) as f32;
    let tol_out = tol["trained_expected_max_abs"].as_f64().unwrap_or(1e-4) as f32;
    let imported = seqmodel_keras::import_file(&dir.join("model.keras"))
        .map_err(|e| Failure(format!("model.keras: {e}")))?;
    let loss = seqmodel_keras::loss_from_config(&train["loss"]).map_err(|e| Failure(e.to_string()))?;
    let opt =
        seqmodel_keras::optimizer_from_config(&train["optimizer"]).map_err(|e| Failure(e.to_string()))?;
    let x = npy::read(&dir.join(train["x"].as_str().unwrap_or("x_train.npy")))?;
    let y = npy::read(&dir.join(train["y"].as_str().unwrap_or("y_train.npy")))?;
    let want_losses = npy::read(&dir.join(train["losses"].as_str().unwrap_or("losses.npy")))?
        .into_f32()
        .ok_or_else(|| Failure("losses.npy is not float".into()))?;
    let epochs = train["epochs"].as_u64().unwrap_or(1) as usize;
    let steps = want_losses.shape().get(1).copied().unwrap_or(1);
    let mut trainer = Trainer::new(imported.program.clone(), imported.weights.clone(), loss, opt)?;
    let stateful = case["stateful"].as_bool() == Some(true);
    let mut worst_loss = 0.0f32;
    for e in 0..epochs {
        for s in 0..steps {
            // Stateful cases train on consecutive time chunks of the whole batch (states carry
            // between chunks, reset after each epoch); others on consecutive row batches.
            let (bx, by) = if stateful {
                let t = x.shape()[1] / steps;
                (slice(&x, 1, s * t..(s + 1) * t), slice(&y, 1, s * t..(s + 1) * t))
            } else {
                let bs = train["batch_size"].as_u64().unwrap_or(32) as usize;
                (slice(&x, 0, s * bs..(s + 1) * bs), slice(&y, 0, s * bs..(s + 1) * bs))
            };
            let got = trainer
                .train_on_batch(&[bx], &[by])
                .map_err(|err| Failure(format!("epoch {e} step {s}: {err}")))?;
            let want = want_losses[[e, s]];
            let rel = (got - want).abs() / want.abs().max(1e-12);
            worst_loss = worst_loss.max(rel);
            if rel > tol_loss {
                return Ok(Outcome::Fail {
                    reason: format!("epoch {e} step {s}: loss {got} vs Keras {want} (rel {rel:.2e})"),
                });
            }
        }
        if stateful {
            trainer.reset_states();
        }
    }
    let trained =
        seqmodel_keras::import_file(&dir.join(train["trained_model"].as_str().unwrap_or("trained.keras")))
            .map_err(|e| Failure(format!("trained model: {e}")))?;
    // Matched in Keras's order: the two files may name their models differently.
    let mut worst_w = 0.0f32;
    let (mine, theirs) = (trainer.program().weight_specs(), trained.program.weight_specs());
    if mine.len() != theirs.len() {
        return Err(Failure(format!(
            "the trained model has {} weights, this one {}",
            theirs.len(),
            mine.len()
        )));
    }
    for (m, t) in mine.iter().zip(&theirs) {
        let key = &m.key;
        let want = trained.weights.get(&t.key).ok_or_else(|| Failure(format!("no weight {}", t.key)))?;
        let got = trainer.weights().get(key).ok_or_else(|| Failure(format!("no trained weight {key}")))?;
        let err = max_abs(got, want);
        worst_w = worst_w.max(err);
        if err > tol_w {
            return Ok(Outcome::Fail { reason: format!("trained weight {key}: max abs error {err:.2e}") });
        }
    }
    let mut worst_out = 0.0f32;
    if let Some(file) = train["trained_expected"].as_str() {
        let mut model = trainer.to_model()?;
        model.reset_states();
        let input = npy::read(&dir.join("input.npy"))?;
        let got = model.predict(&[input])?.remove(0);
        let want = npy::read(&dir.join(file))?.into_f32().ok_or_else(|| Failure("expected floats".into()))?;
        worst_out = max_abs(&got, &want);
        if worst_out > tol_out {
            return Ok(Outcome::Fail {
                reason: format!("trained model output: max abs error {worst_out:.2e}"),
            });
        }
    }
    Ok(Outcome::Pass { max_abs: worst_w.max(worst_out).max(worst_loss) })
}
