//! `seqc conformance DIR`: runs every Keras case folder in DIR through the importer and the
//! interpreter and compares with Keras's outputs. Nothing here knows any particular case.

use std::path::{Path, PathBuf};

use serde_json::Value as J;

use crate::{Failure, npy};

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every model file and call matched within tolerance.
    Pass {
        /// Largest absolute error seen.
        max_abs: f32,
    },
    /// Something differed or failed.
    Fail {
        /// Why.
        reason: String,
    },
    /// Not an inference case (training runs elsewhere).
    Skip {
        /// Why.
        reason: String,
    },
}

/// Runs one case folder.
pub fn run_case(dir: &Path) -> Outcome {
    match try_case(dir) {
        Ok(o) => o,
        Err(Failure(reason)) => Outcome::Fail { reason },
    }
}

fn try_case(dir: &Path) -> Result<Outcome, Failure> {
    let case: J = serde_json::from_slice(
        &std::fs::read(dir.join("case.json")).map_err(|e| Failure(format!("case.json: {e}")))?,
    )
    .map_err(|e| Failure(format!("case.json: {e}")))?;
    match case["kind"].as_str() {
        Some("inference") => {}
        Some("train") => return crate::conformance_train::run(dir, &case),
        other => return Ok(Outcome::Skip { reason: format!("{} case", other.unwrap_or("unknown")) }),
    }
    let tol = case["tolerance"]["max_abs"].as_f64().unwrap_or(1e-5) as f32;
    let files: Vec<String> = case["model_files"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_else(|| vec!["model.keras".into()]);
    let calls = case["calls"].as_array().cloned().unwrap_or_default();
    if calls.is_empty() {
        return Err(Failure("case.json lists no calls".into()));
    }
    let mut worst = 0.0f32;
    for file in &files {
        let imported =
            seqmodel_keras::import_file(&dir.join(file)).map_err(|e| Failure(format!("{file}: {e}")))?;
        let mut model = seqmodel_runtime::Model::new(imported.program, &imported.weights)
            .map_err(|e| Failure(format!("{file}: {e}")))?;
        for (ci, call) in calls.iter().enumerate() {
            if call["reset_states_before"].as_bool() == Some(true) {
                model.reset_states();
            }
            let names = |k: &str| -> Vec<PathBuf> {
                call[k]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str()).map(|s| dir.join(s)).collect())
                    .unwrap_or_default()
            };
            let inputs = names("inputs").iter().map(|p| npy::read(p)).collect::<Result<Vec<_>, _>>()?;
            let outputs = model.predict(&inputs).map_err(|e| Failure(format!("{file} call {ci}: {e}")))?;
            let expected = names("expected");
            if expected.len() != outputs.len() {
                return Err(Failure(format!(
                    "{file} call {ci}: {} outputs, {} expected",
                    outputs.len(),
                    expected.len()
                )));
            }
            for (k, (got, path)) in outputs.iter().zip(&expected).enumerate() {
                let want = npy::read(path)?
                    .into_f32()
                    .ok_or_else(|| Failure(format!("{}: expected floats", path.display())))?;
                if got.shape() != want.shape() {
                    return Ok(Outcome::Fail {
                        reason: format!(
                            "{file} call {ci} output {k}: shape {:?}, expected {:?}",
                            got.shape(),
                            want.shape()
                        ),
                    });
                }
                let err = got
                    .iter()
                    .zip(want.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, |m, e| if e.is_nan() { f32::INFINITY } else { m.max(e) });
                worst = worst.max(err);
                if err > tol {
                    return Ok(Outcome::Fail {
                        reason: format!("{file} call {ci} output {k}: max abs error {err:.3e} > {tol:.0e}"),
                    });
                }
            }
        }
    }
    Ok(Outcome::Pass { max_abs: worst })
}

/// Runs every case folder (a folder with a `case.json`) below `root`, printing one line per
/// case and a closing count. Returns `(passed, failed, skipped)`.
pub fn run_all(root: &Path) -> Result<(usize, usize, usize), Failure> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| Failure(format!("cannot read {}: {e}", root.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("case.json").is_file())
        .collect();
    dirs.sort();
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for d in &dirs {
        let name = d.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        match run_case(d) {
            Outcome::Pass { max_abs } => {
                pass += 1;
                println!("{name:<32} PASS  max_abs_err={max_abs:.2e}");
            }
            Outcome::Fail { reason } => {
                fail += 1;
                println!("{name:<32} FAIL  {reason}");
            }
            Outcome::Skip { reason } => {
                skip += 1;
                println!("{name:<32} SKIP  {reason}");
            }
        }
    }
    println!("{pass} passed, {fail} failed, {skip} skipped");
    Ok((pass, fail, skip))
}
