//! Keras import: reads Keras 3 `.keras` archives and legacy `.h5` files in pure Rust,
//! converts the model config to readable `.seq` source, checks it with the compiler, and
//! maps every weight onto the checked program.
//!
//! An unsupported layer or option is an [`ImportError::Unsupported`] naming it; nothing is
//! silently computed differently.

mod compile_config;
mod convert;
mod error;
mod h5;

use std::io::Read;
use std::path::Path;

pub use compile_config::{loss_from_config, optimizer_from_config};
pub use convert::{Converted, WeightBinding, convert, snake_case};
pub use error::{ImportError, Result};
use seqmodel_compiler::ir::Program;
use seqmodel_runtime::WeightStore;

/// A Keras model turned into seqmodel's terms.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The generated `.seq` source.
    pub source: String,
    /// The checked program of the top model.
    pub program: Program,
    /// The weights, keyed as the program needs them.
    pub weights: WeightStore,
    /// `keras_version` recorded in the file.
    pub keras_version: String,
    /// The weight keys in Keras's order (`model.weights`).
    pub order: Vec<String>,
}

impl Imported {
    /// The weights renamed to another program's keys, matched by Keras's order and checked
    /// shape by shape (for a `.seq` written by hand with the same architecture as the Keras
    /// model; Keras's legacy loader matches weights by order too).
    pub fn weights_for(&self, specs: &[(&str, &[usize])]) -> Result<WeightStore> {
        if specs.len() != self.order.len() {
            return Err(ImportError::Hdf5(format!(
                "the Keras model has {} weight tensors, this model needs {}",
                self.order.len(),
                specs.len()
            )));
        }
        let mut out = WeightStore::new();
        for (key, (want_key, want_shape)) in self.order.iter().zip(specs) {
            let w =
                self.weights.get(key).ok_or_else(|| ImportError::Hdf5(format!("weight `{key}` missing")))?;
            if w.shape() != *want_shape {
                return Err(ImportError::Hdf5(format!(
                    "Keras weight `{key}` has shape {:?} but `{want_key}` needs {want_shape:?}; the architectures differ",
                    w.shape()
                )));
            }
            out.insert(*want_key, w.clone());
        }
        Ok(out)
    }
}

/// Imports a `.keras` or legacy `.h5` file (chosen by its first bytes, not its name).
pub fn import_file(path: &Path) -> Result<Imported> {
    let bytes =
        std::fs::read(path).map_err(|e| ImportError::Io { path: path.display().to_string(), source: e })?;
    import_bytes(bytes)
}

/// Imports from the bytes of a `.keras` zip or a legacy `.h5` file.
pub fn import_bytes(bytes: Vec<u8>) -> Result<Imported> {
    if bytes.starts_with(b"PK") {
        import_keras_zip(bytes)
    } else if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        import_legacy_h5(bytes)
    } else {
        Err(ImportError::Archive("neither a .keras zip nor an HDF5 file (unknown magic bytes)".into()))
    }
}

fn zip_member(archive: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str) -> Result<Vec<u8>> {
    let mut f = archive.by_name(name).map_err(|e| ImportError::Archive(format!("member `{name}`: {e}")))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).map_err(|e| ImportError::Archive(format!("member `{name}`: {e}")))?;
    Ok(out)
}

fn parse_json(bytes: &[u8], what: &str) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes).map_err(|e| ImportError::Config(format!("{what} is not valid JSON: {e}")))
}

fn compile(converted: &Converted) -> Result<Program> {
    let compiled = seqmodel_compiler::compile(&converted.source)
        .map_err(|e| ImportError::Compile(e.render("imported.seq", &converted.source, false)))?;
    compiled
        .program(&converted.main)
        .cloned()
        .ok_or_else(|| ImportError::Compile(format!("model `{}` missing", converted.main)))
}

fn import_keras_zip(bytes: Vec<u8>) -> Result<Imported> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| ImportError::Archive(e.to_string()))?;
    let config = parse_json(&zip_member(&mut archive, "config.json")?, "config.json")?;
    let keras_version = match zip_member(&mut archive, "metadata.json") {
        Ok(m) => parse_json(&m, "metadata.json")?["keras_version"].as_str().unwrap_or("3").to_string(),
        Err(_) => "3".to_string(),
    };
    let converted = convert(&config, &keras_version)?;
    let program = compile(&converted)?;
    let file = h5::open(zip_member(&mut archive, "model.weights.h5")?)?;
    let mut weights = WeightStore::new();
    for b in &converted.weights {
        weights.insert(b.key.clone(), h5::read_f32(&file, &b.keras_path)?);
    }
    let used: std::collections::HashSet<&str> =
        converted.weights.iter().map(|b| b.keras_path.as_str()).collect();
    let extra: Vec<String> =
        h5::dataset_paths(&file, "layers")?.into_iter().filter(|p| !used.contains(p.as_str())).collect();
    if !extra.is_empty() {
        return Err(ImportError::Hdf5(format!(
            "the weights file has datasets no layer uses: {}",
            extra.join(", ")
        )));
    }
    seqmodel_runtime::Model::new(program.clone(), &weights)?;
    let order = converted.weights.iter().map(|b| b.key.clone()).collect();
    Ok(Imported { source: converted.source, program, weights, keras_version, order })
}

fn import_legacy_h5(bytes: Vec<u8>) -> Result<Imported> {
    let file = h5::open(bytes)?;
    let config_text = h5::group_attr_string(&file, "/", "model_config")?;
    let config = parse_json(config_text.as_bytes(), "model_config")?;
    let keras_version = h5::group_attr_string(&file, "/", "keras_version").unwrap_or_else(|_| "2".into());
    let converted = convert(&config, &keras_version)?;
    let program = compile(&converted)?;
    let mut weights = WeightStore::new();
    for (layer, keys) in &converted.legacy_layers {
        let group = format!("model_weights/{layer}");
        let names =
            if keys.is_empty() { Vec::new() } else { h5::group_attr_strings(&file, &group, "weight_names")? };
        if names.len() != keys.len() {
            return Err(ImportError::Hdf5(format!(
                "layer `{layer}` has {} weights in the file, the model needs {}",
                names.len(),
                keys.len()
            )));
        }
        for (key, name) in keys.iter().zip(&names) {
            weights.insert(key.clone(), h5::read_f32(&file, &format!("{group}/{name}"))?);
        }
    }
    seqmodel_runtime::Model::new(program.clone(), &weights)?;
    let order = converted.legacy_layers.iter().flat_map(|(_, keys)| keys.iter().cloned()).collect();
    Ok(Imported { source: converted.source, program, weights, keras_version, order })
}
