//! `seqc train` and the progress display shared with the demo.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use seqmodel_runtime::WeightStore;
use seqmodel_runtime::train::{FitOptions, Loss, Optimizer, Trainer};

use crate::{Failure, npy};

/// Options of `seqc train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The `.seq` file.
    pub file: PathBuf,
    /// Which model (default: the last one in the file).
    #[arg(long)]
    pub model: Option<String>,
    /// Inputs, one `.npy` per model input.
    #[arg(long = "x", required = true)]
    pub x: Vec<PathBuf>,
    /// Targets, one `.npy` per model output.
    #[arg(long = "y", required = true)]
    pub y: Vec<PathBuf>,
    /// Keras loss name (mse, mae, sparse_categorical_crossentropy, kl_divergence, ...).
    #[arg(long, default_value = "mse")]
    pub loss: String,
    /// sgd, adam, adamw (weight decay 0.004), rmsprop, adagrad, adamax or nadam, with
    /// Keras's defaults.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate.
    #[arg(long, default_value_t = 0.001)]
    pub lr: f32,
    /// Epochs.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Initial weights (safetensors); default: seeded random.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Where to save the trained weights (safetensors).
    #[arg(long)]
    pub save: PathBuf,
    /// Also write the loss curve as SVG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
    /// Hold out this fraction of the rows (the last ones) for validation.
    #[arg(long, default_value_t = 0.0)]
    pub validation_split: f32,
    /// Stop after this many epochs without improvement.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Save the best weights so far to this file (must not exist).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Progress as Keras's `verbose`: 0 silent, 1 a bar, 2 one line per epoch (default: 1
    /// on a terminal, 2 otherwise).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub verbose: Option<u8>,
}

/// Keras's `verbose="auto"`: a bar on a terminal, one line per epoch in a log.
pub fn auto_verbosity() -> u8 {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) { 1 } else { 2 }
}

/// `seqc train`.
pub fn train(a: TrainArgs, color: bool) -> Result<ExitCode, Failure> {
    let mut outputs = vec![("--save", a.save.as_path())];
    outputs.extend(a.plot.as_deref().map(|p| ("--plot", p)));
    outputs.extend(a.checkpoint.as_deref().map(|p| ("--checkpoint", p)));
    crate::commands::check_outputs(&outputs, a.force)?;
    let c = crate::commands::compile_file(&a.file, color)?;
    let program = crate::commands::pick(&c, a.model.as_deref())?.clone();
    let loss = Loss::from_name(&a.loss).ok_or_else(|| Failure(format!("unknown loss `{}`", a.loss)))?;
    let opt = match a.optimizer.to_ascii_lowercase().as_str() {
        "sgd" => Optimizer::sgd(a.lr),
        "adam" => Optimizer::adam(a.lr),
        "rmsprop" => Optimizer::rmsprop(a.lr),
        "adagrad" => Optimizer::adagrad(a.lr),
        "adamw" => Optimizer::adamw(a.lr),
        "adamax" => Optimizer::adamax(a.lr),
        "nadam" => Optimizer::nadam(a.lr),
        other => {
            return Err(Failure(format!(
                "unknown optimizer `{other}` (sgd, adam, adamw, rmsprop, adagrad, adamax, nadam)"
            )));
        }
    };
    let weights = match &a.weights {
        Some(p) => WeightStore::load(p)?,
        None => WeightStore::try_random(&program, 1, 0.1)?,
    };
    let x = a.x.iter().map(|p| npy::read(p)).collect::<Result<Vec<_>, _>>()?;
    let y = a.y.iter().map(|p| npy::read(p)).collect::<Result<Vec<_>, _>>()?;
    let mut trainer = Trainer::new(program, weights, loss, opt)?;
    let opts = FitOptions {
        epochs: a.epochs,
        batch_size: a.batch_size,
        shuffle: true,
        early_stopping_patience: a.patience,
        validation_split: a.validation_split,
        validation_data: None,
        checkpoint: a.checkpoint.clone(),
        verbose: a.verbose.unwrap_or_else(auto_verbosity),
    };
    let history = trainer.fit(&x, &y, &opts)?;
    trainer.weights().save(&a.save, a.force)?;
    eprintln!("saved {}", a.save.display());
    if let Some(p) = &a.plot {
        crate::commands::write_new(p, crate::plot::loss_svg("training loss", &history.loss).as_bytes())?;
        eprintln!("wrote {}", p.display());
    }
    println!("final loss {:.6}", history.loss.last().copied().unwrap_or(f32::NAN));
    if let Some(v) = history.val_loss.last() {
        println!("final val_loss {v:.6}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh directory `base`, `base-2`, ... that does not exist yet (so nothing is overwritten).
pub fn fresh_dir(base: &Path) -> Result<PathBuf, Failure> {
    let mut dir = base.to_path_buf();
    let mut k = 2;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{k}", base.display()));
        k += 1;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
