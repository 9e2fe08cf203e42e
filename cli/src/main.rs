//! `seqc`: the seqmodel command line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod conformance;
mod conformance_train;
mod demo;
mod fmt;
mod npy;
mod plot;
mod standalone;
mod train_cmd;

/// Check, summarise, draw, import, run and test recurrent models written in `.seq`.
#[derive(Parser)]
#[command(name = "seqc", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check `.seq` files and report every error rustc-style (exit 1 on errors).
    Check {
        /// The files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Rewrite `.seq` files in the canonical layout (comments kept), like `cargo fmt`.
    Fmt {
        /// The files to format.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; list the files that are not formatted and exit 1 if any.
        #[arg(long)]
        check: bool,
    },
    /// Serve the Language Server Protocol on stdin/stdout (diagnostics, shapes on hover and as
    /// inlay hints, navigation, completion, formatting) for editors.
    Lsp,
    /// Print a Keras-like summary table: layers, output shapes, parameter counts.
    Summary {
        /// The `.seq` file.
        file: PathBuf,
        /// Which model (default: the last one in the file).
        #[arg(long)]
        model: Option<String>,
    },
    /// Print the model graph in Graphviz DOT (or write SVG with `-o x.svg` when `dot` exists).
    Graph {
        /// The `.seq` file.
        file: PathBuf,
        /// Which model (default: the last one in the file).
        #[arg(long)]
        model: Option<String>,
        /// Write here instead of stdout (`.svg` renders through Graphviz `dot`).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Overwrite the output file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Convert a Keras `.keras` or legacy `.h5` model to `.seq` (and its weights to safetensors).
    Import {
        /// The Keras file.
        model: PathBuf,
        /// The `.seq` file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Also write the weights here (safetensors).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Overwrite existing output files.
        #[arg(long)]
        force: bool,
    },
    /// Run a model on `.npy` inputs; each output is written as `output_<k>.npy`.
    Run {
        /// The `.seq` file.
        file: PathBuf,
        /// Which model (default: the last one in the file).
        #[arg(long)]
        model: Option<String>,
        /// Weights (safetensors, as written by `seqc import --weights`).
        #[arg(long)]
        weights: PathBuf,
        /// One `.npy` per model input, in declaration order.
        #[arg(long = "input", required = true)]
        inputs: Vec<PathBuf>,
        /// Where to write the outputs.
        #[arg(long)]
        output_dir: PathBuf,
        /// Load weights saved for another architecture (same keys and shapes) anyway.
        #[arg(long)]
        any_architecture: bool,
    },
    /// Print the Rust that `seqmodel!` and the build.rs API generate for a `.seq` file.
    Build {
        /// The `.seq` file.
        file: PathBuf,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Write a standalone crate (Cargo.toml, src/lib.rs, a smoke test) into this new folder.
        #[arg(long = "crate", conflicts_with = "output")]
        crate_dir: Option<PathBuf>,
        /// Path of the `seqmodel` crate the standalone crate depends on (default: this
        /// checkout's).
        #[arg(long)]
        seqmodel_path: Option<PathBuf>,
        /// Bake this safetensors file into the main model (the file's last): checked against
        /// its weight table now, included by absolute path, read by the model's `baked()`.
        #[arg(long, conflicts_with = "crate_dir")]
        weights: Option<PathBuf>,
        /// Generate the main model's `no_std` code with `--weights` compiled in as static
        /// arrays (a step function for a `#![no_std]` crate without `alloc`).
        #[arg(long, requires = "weights")]
        no_std: bool,
        /// Overwrite the output file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Train a model on `.npy` data (Keras's fit) and save the weights as safetensors.
    Train(train_cmd::TrainArgs),
    /// Train the seed autoencoder on embedded synthetic tank data (the main job).
    Demo {
        /// Training epochs.
        #[arg(long, default_value_t = 200)]
        epochs: usize,
    },
    /// Run Keras conformance cases (folders with a case.json) and compare with Keras's outputs.
    Conformance {
        /// The folder holding the case folders.
        dir: PathBuf,
    },
    /// Explain a diagnostic code (`seqc explain SM0302`), like `rustc --explain`; without a
    /// code, list them all.
    Explain {
        /// The code.
        code: Option<String>,
    },
}

/// A failure with a message for the user; the process exits with code 1 (or 2 for usage).
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::error::Error> From<E> for Failure {
    /// The error with its causes, `what: why: why` (each cause once).
    fn from(e: E) -> Self {
        let mut msg = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !msg.contains(&text) {
                msg = format!("{msg}: {text}");
            }
            cause = c.source();
        }
        Failure(msg)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let result = match cli.command {
        Command::Check { files } => commands::check(&files, color),
        Command::Fmt { files, check } => fmt::run(&files, check, color),
        Command::Lsp => seqmodel_lsp::run_stdio()
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| Failure(format!("language server: {e}"))),
        Command::Summary { file, model } => commands::summary(&file, model.as_deref(), color),
        Command::Graph { file, model, output, force } => {
            commands::graph(&file, model.as_deref(), output.as_deref(), force, color)
        }
        Command::Demo { epochs } => demo::run(epochs, color),
        Command::Build { file, crate_dir: Some(dir), seqmodel_path, .. } => {
            standalone::write_crate(&file, &dir, seqmodel_path.as_deref(), color)
        }
        Command::Build { file, output, weights, no_std, force, .. } => {
            commands::build(&file, output.as_deref(), weights.as_deref(), no_std, force, color)
        }
        Command::Train(args) => train_cmd::train(args, color),
        Command::Import { model, output, weights, force } => {
            commands::import(&model, &output, weights.as_deref(), force)
        }
        Command::Run { file, model, weights, inputs, output_dir, any_architecture } => {
            commands::run(&file, model.as_deref(), &weights, &inputs, &output_dir, any_architecture, color)
        }
        Command::Explain { code } => explain(code.as_deref()),
        Command::Conformance { dir } => conformance::run_all(&dir)
            .map(|(_, failed, _)| if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
    };
    match result {
        Ok(code) => code,
        Err(Failure(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// `seqc explain [CODE]`.
fn explain(code: Option<&str>) -> Result<ExitCode, Failure> {
    use seqmodel_compiler::codes;
    match code {
        None => {
            for c in codes::CODES {
                println!("{}  {}", c.id, c.title);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(id) => {
            let c = codes::explain(id).ok_or_else(|| {
                Failure(format!("no diagnostic code `{id}`; `seqc explain` lists them (SM0001 ... SM0999)"))
            })?;
            println!("{}: {}\n\n{}", c.id, c.title, c.explanation);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads a source file as text, with a clear error for missing or non-UTF-8 files.
pub fn read_source(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure(format!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}
