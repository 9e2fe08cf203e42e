//! Keras import: reads Keras 3 `.keras` archives and legacy `.h5` files in pure Rust,
//! converts the model config to readable `.seq` source, checks it with the compiler, and
//! maps every weight onto the checked program.
//!
//! An unsupported layer or option is an [`ImportError::Unsupported`] naming it; nothing is
//! silently computed differently.

mod compile_config;
mod convert;
mod described;
mod error;
mod h5;
mod ops;
mod run_order;
#[cfg(feature = "import")]
mod tidy;

use std::io::Read;
use std::path::Path;

pub use compile_config::{loss_from_config, optimizer_from_config};
pub use convert::{Converted, WeightBinding, convert, snake_case};
pub use error::{ImportError, Result};
use seqmodel_runtime::WeightStore;

/// A Keras file read: its converted config and its weights under the converted keys.
#[cfg_attr(not(feature = "import"), allow(dead_code))] // the `.seq` parts serve `import` only
struct KerasFile {
    converted: Converted,
    weights: WeightStore,
    keras_version: String,
    /// The weight keys in Keras's order (`model.weights`).
    order: Vec<String>,
}

/// A Keras model turned into seqmodel's terms.
#[cfg(feature = "import")]
#[derive(Debug, Clone)]
pub struct Imported {
    /// The generated `.seq` source.
    pub source: String,
    /// The checked program of the top model.
    pub program: seqmodel_compiler::ir::Program,
    /// The weights, keyed as the program needs them.
    pub weights: WeightStore,
    /// `keras_version` recorded in the file.
    pub keras_version: String,
    /// The weight keys in Keras's order (`model.weights`).
    pub order: Vec<String>,
    /// The layers' regularizers (``layer `d`: kernel_regularizer``): inference is unchanged,
    /// but training with seqmodel does not add their penalties to the loss, so its numbers
    /// differ from Keras's. Also listed in a comment at the top of [`Imported::source`].
    pub regularizers: Vec<String>,
}

/// Binds weights read in Keras's `order` to a model's weight table `specs` (`(key, shape)`
/// in Keras's order, as a generated type lists them), checking every shape; each array is
/// moved, not copied.
fn bind(mut weights: WeightStore, order: &[String], specs: &[(&str, &[usize])]) -> Result<WeightStore> {
    if specs.len() != order.len() {
        return Err(ImportError::Hdf5(format!(
            "the Keras model has {} weight tensors, this model needs {}",
            order.len(),
            specs.len()
        )));
    }
    let mut out = WeightStore::new();
    for (key, (want_key, want_shape)) in order.iter().zip(specs) {
        let w = weights.remove(key).ok_or_else(|| ImportError::Hdf5(format!("weight `{key}` missing")))?;
        if w.shape() != *want_shape {
            return Err(ImportError::Hdf5(format!(
                "Keras weight `{key}` has shape {:?} but `{want_key}` needs {want_shape:?}; the architectures differ",
                w.shape()
            )));
        }
        out.insert(*want_key, w);
    }
    Ok(out)
}

#[cfg(feature = "import")]
impl Imported {
    /// The weights renamed to another program's keys, matched by Keras's order and checked
    /// shape by shape (for a `.seq` written by hand with the same architecture as the Keras
    /// model; Keras's legacy loader matches weights by order too).
    pub fn weights_for(&self, specs: &[(&str, &[usize])]) -> Result<WeightStore> {
        bind(self.weights.clone(), &self.order, specs)
    }
}

/// Reads a `.keras` or legacy `.h5` file's weights and binds them to a model's weight table
/// `specs` (`(key, shape)` in Keras's order), checking every shape. Reads the Keras config
/// to find the weights but parses no `.seq` and runs no compiler: this is what a generated
/// type's `from_keras` calls.
pub fn load_weights(path: &Path, specs: &[(&str, &[usize])]) -> Result<WeightStore> {
    let r = read(read_bytes(path)?, None)?;
    bind(r.weights, &r.order, specs)
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| ImportError::Io { path: path.display().to_string(), source: e })
}

/// Imports a `.keras` or legacy `.h5` file (chosen by its first bytes, not its name).
#[cfg(feature = "import")]
pub fn import_file(path: &Path) -> Result<Imported> {
    import_bytes_named(read_bytes(path)?, name_hint(path).as_deref())
}

/// The name a file suggests for its model: its stem, or its folder's name when the stem says
/// nothing (`model.keras`).
#[cfg(feature = "import")]
fn name_hint(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    if matches!(stem.as_str(), "model" | "weights" | "saved_model") {
        let dir = path.canonicalize().ok()?.parent()?.file_name()?.to_string_lossy().into_owned();
        return Some(dir);
    }
    Some(stem)
}

/// Imports from the bytes of a `.keras` zip or a legacy `.h5` file: the `.seq` source, checked
/// by the compiler, with the weights keyed as its program needs them.
#[cfg(feature = "import")]
pub fn import_bytes(bytes: Vec<u8>) -> Result<Imported> {
    import_bytes_named(bytes, None)
}

/// [`import_bytes`], naming the top model `name_hint` when Keras generated its name.
#[cfg(feature = "import")]
pub fn import_bytes_named(bytes: Vec<u8>, name_hint: Option<&str>) -> Result<Imported> {
    let KerasFile { converted, weights, keras_version, order } = read(bytes, name_hint)?;
    let compiled = seqmodel_compiler::compile(&converted.source)
        .map_err(|e| ImportError::Compile(e.render("imported.seq", &converted.source, false)))?;
    let program = compiled
        .program(&converted.main)
        .cloned()
        .ok_or_else(|| ImportError::Compile(format!("model `{}` missing", converted.main)))?;
    seqmodel_runtime::Model::new(program.clone(), &weights)?;
    let source = tidy::tidy(&converted.source, &compiled);
    let regularizers = converted.regularizers;
    Ok(Imported { source, program, weights, keras_version, order, regularizers })
}

/// Reads the config and the weights of a `.keras` zip or a legacy `.h5` file.
fn read(bytes: Vec<u8>, name_hint: Option<&str>) -> Result<KerasFile> {
    if bytes.starts_with(b"PK") {
        read_keras_zip(bytes, name_hint)
    } else if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        read_legacy_h5(bytes, name_hint)
    } else {
        Err(ImportError::Archive("neither a .keras zip nor an HDF5 file (unknown magic bytes)".into()))
    }
}

/// The largest `config.json` or `metadata.json` read (real ones are kilobytes).
const MAX_JSON_BYTES: u64 = 64 << 20;

/// The largest ratio of a zip member's size to its compressed size (Keras stores its
/// weights uncompressed; text compresses about 10×).
const MAX_ZIP_RATIO: u64 = 200;

/// Reads member `name`, refusing one that declares more than `max` bytes or an implausible
/// compression ratio, and never reading more than it declares (a lying header cannot make
/// it allocate more).
fn zip_member(
    archive: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>,
    name: &str,
    max: u64,
) -> Result<Vec<u8>> {
    let f = archive.by_name(name).map_err(|e| ImportError::Archive(format!("member `{name}`: {e}")))?;
    let (size, packed) = (f.size(), f.compressed_size());
    if size > max || size > packed.saturating_mul(MAX_ZIP_RATIO).max(1 << 20) {
        return Err(ImportError::Archive(format!(
            "member `{name}` declares {size} bytes from {packed} compressed, more than this reader accepts (a zip bomb?)"
        )));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(size as usize)
        .map_err(|_| ImportError::Archive(format!("member `{name}`: cannot allocate its {size} bytes")))?;
    f.take(size).read_to_end(&mut out).map_err(|e| ImportError::Archive(format!("member `{name}`: {e}")))?;
    Ok(out)
}

fn parse_json(bytes: &[u8], what: &str) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes).map_err(|e| ImportError::Config(format!("{what} is not valid JSON: {e}")))
}

fn read_keras_zip(bytes: Vec<u8>, name_hint: Option<&str>) -> Result<KerasFile> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| ImportError::Archive(e.to_string()))?;
    let config = parse_json(&zip_member(&mut archive, "config.json", MAX_JSON_BYTES)?, "config.json")?;
    let keras_version = match zip_member(&mut archive, "metadata.json", MAX_JSON_BYTES) {
        Ok(m) => parse_json(&m, "metadata.json")?["keras_version"].as_str().unwrap_or("3").to_string(),
        Err(_) => "3".to_string(),
    };
    let converted = convert::convert_named(&config, &keras_version, name_hint)?;
    let file = h5::open(zip_member(&mut archive, "model.weights.h5", u64::MAX)?)?;
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
    let order = converted.weights.iter().map(|b| b.key.clone()).collect();
    Ok(KerasFile { converted, weights, keras_version, order })
}

fn read_legacy_h5(bytes: Vec<u8>, name_hint: Option<&str>) -> Result<KerasFile> {
    let file = h5::open(bytes)?;
    let config_text = h5::group_attr_string(&file, "/", "model_config")?;
    let config = parse_json(config_text.as_bytes(), "model_config")?;
    let keras_version = h5::group_attr_string(&file, "/", "keras_version").unwrap_or_else(|_| "2".into());
    let converted = convert::convert_named(&config, &keras_version, name_hint)?;
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
    let order = converted.legacy_layers.iter().flat_map(|(_, keys)| keys.iter().cloned()).collect();
    Ok(KerasFile { converted, weights, keras_version, order })
}
