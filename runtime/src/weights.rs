//! Named weight tensors, checked against what a program needs, and the project's own file
//! format (safetensors).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use seqmodel_ir::Program;

use crate::error::{Result, RuntimeError};

/// Weight tensors by key (`Model/layer/kernel`), as [`Program::weight_specs`] names them,
/// and the architecture they were made for, when known.
#[derive(Debug, Clone, Default)]
pub struct WeightStore {
    tensors: BTreeMap<String, ArrayD<f32>>,
    architecture: Option<Architecture>,
}

impl PartialEq for WeightStore {
    /// Two stores are equal when they hold the same tensors (whatever they are tagged with).
    fn eq(&self, other: &Self) -> bool {
        self.tensors == other.tensors
    }
}

/// The model a set of weights was made for: its name and [`Program::fingerprint`], written
/// into the metadata of weight files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architecture {
    /// The model's name.
    pub model: String,
    /// Its architecture's fingerprint.
    pub fingerprint: u64,
}

use seqmodel_ir::{ARCHITECTURE_METADATA_KEY as FINGERPRINT_KEY, MODEL_METADATA_KEY as MODEL_KEY};

impl WeightStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one tensor.
    pub fn insert(&mut self, key: impl Into<String>, value: ArrayD<f32>) {
        self.tensors.insert(key.into(), value);
    }

    /// Takes the weight `key` out of the store.
    pub fn remove(&mut self, key: &str) -> Option<ArrayD<f32>> {
        self.tensors.remove(key)
    }

    /// One tensor by key.
    pub fn get(&self, key: &str) -> Option<&ArrayD<f32>> {
        self.tensors.get(key)
    }

    /// One tensor by key, mutably (optimizers update weights in place).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut ArrayD<f32>> {
        self.tensors.get_mut(key)
    }

    /// All keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Deterministic pseudo-random weights for `program`, uniform in `[-scale, scale]`; the
    /// statistics a layer keeps (BatchNormalization's moving mean and variance) start at
    /// Keras's initial values instead.
    pub fn random(program: &Program, seed: u64, scale: f32) -> Self {
        Self::try_random(program, seed, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`WeightStore::random`], or [`RuntimeError::OutOfMemory`] naming the layer whose
    /// weights cannot be allocated.
    pub fn try_random(program: &Program, seed: u64, scale: f32) -> Result<Self> {
        let specs = program.weight_specs();
        let total: usize =
            specs.iter().map(|w| w.shape.iter().product::<usize>()).fold(0, usize::saturating_add);
        crate::memory::ensure_allocatable(total.saturating_mul(4), || {
            format!("model `{}` ({total} weights)", program.name)
        })?;
        let refs: Vec<(&str, &[usize])> =
            specs.iter().map(|w| (w.key.as_str(), w.shape.as_slice())).collect();
        let mut store = Self::try_random_from_specs(&refs, seed, scale)?;
        for spec in specs.iter().filter(|s| s.initial.is_some()) {
            let v = spec.initial.unwrap_or_default();
            store.insert(spec.key.clone(), ArrayD::from_elem(IxDyn(&spec.shape), v));
        }
        Ok(store)
    }

    /// Deterministic pseudo-random weights for a list of `(key, shape)`.
    ///
    /// # Panics
    /// If a weight cannot be allocated (see [`WeightStore::try_random_from_specs`]).
    pub fn random_from_specs(specs: &[(&str, &[usize])], seed: u64, scale: f32) -> Self {
        Self::try_random_from_specs(specs, seed, scale).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`WeightStore::random_from_specs`], or [`RuntimeError::OutOfMemory`] naming the
    /// weight that cannot be allocated.
    pub fn try_random_from_specs(specs: &[(&str, &[usize])], seed: u64, scale: f32) -> Result<Self> {
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let mut store = Self::new();
        for (key, shape) in specs {
            let n: usize = shape.iter().product();
            let mut data = crate::memory::try_zeroed(n, || format!("weight `{key}` {shape:?}"))?;
            data.iter_mut().for_each(|x| *x = next() * scale);
            store.insert(*key, ArrayD::from_shape_vec(IxDyn(shape), data).expect("shape matches length"));
        }
        Ok(store)
    }

    /// Checks that the store has exactly the weights `program` needs, with their shapes.
    pub fn check(&self, program: &Program) -> Result<()> {
        let specs: Vec<(String, Vec<usize>)> =
            program.weight_specs().into_iter().map(|w| (w.key, w.shape)).collect();
        let refs: Vec<(&str, &[usize])> = specs.iter().map(|(k, s)| (k.as_str(), s.as_slice())).collect();
        self.check_specs(&program.name, &refs)
    }

    /// Checks that the store has exactly the weights listed as `(key, shape)`: none missing,
    /// none extra, every shape right, every value finite.
    pub fn check_specs(&self, model: &str, specs: &[(&str, &[usize])]) -> Result<()> {
        let shape_of = |k: &str| self.tensors.get(k).map(|t| t.shape().to_vec());
        seqmodel_ir::check_weight_table(specs, self.tensors.keys().map(String::as_str), shape_of)
            .map_err(|m| RuntimeError::from_mismatch(model, m))?;
        for (key, t) in &self.tensors {
            if let Some(bad) = t.iter().position(|v| !v.is_finite()) {
                return Err(RuntimeError::InvalidData(format!(
                    "weight `{key}` has a non-finite value at flat index {bad}"
                )));
            }
        }
        Ok(())
    }

    /// A copy with every tensor in standard (C) layout, as the kernels read them.
    pub fn standard_layout(&self) -> Self {
        let mut s = Self::new();
        for (k, v) in &self.tensors {
            s.insert(k.clone(), v.as_standard_layout().to_owned());
        }
        s
    }

    /// [`WeightStore::standard_layout`] taking the store: arrays already in standard layout
    /// (all that were read from a file) are kept, not copied.
    pub fn into_standard_layout(self) -> Self {
        let mut s = Self::new();
        for (k, v) in self.tensors {
            let v = if v.is_standard_layout() { v } else { v.as_standard_layout().to_owned() };
            s.insert(k, v);
        }
        s
    }

    /// Records that these weights are `program`'s (saved with them).
    pub fn tag(&mut self, program: &Program) {
        self.architecture =
            Some(Architecture { model: program.name.clone(), fingerprint: program.fingerprint() });
    }

    /// Forgets the architecture these weights were made for, so that they load into any
    /// model with the same keys and shapes (`seqc run --any-architecture`).
    pub fn untag(&mut self) {
        self.architecture = None;
    }

    /// The architecture these weights were made for, if known.
    pub fn architecture(&self) -> Option<&Architecture> {
        self.architecture.as_ref()
    }

    /// An error when these weights are known to be another architecture's than `model`'s
    /// with `fingerprint` (weights of unknown origin pass).
    pub fn check_architecture(&self, model: &str, fingerprint: u64) -> Result<()> {
        match &self.architecture {
            Some(a) if a.fingerprint != fingerprint => {
                Err(RuntimeError::OtherArchitecture { model: model.into(), made_for: a.model.clone() })
            }
            _ => Ok(()),
        }
    }

    /// Serialises to safetensors bytes (f32, little endian).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.shape().to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
            .iter()
            .map(|(k, shape, data)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| RuntimeError::weight_file_from(format!("tensor `{k}` cannot be written"), e))
            })
            .collect::<Result<_>>()?;
        let meta = self.architecture.as_ref().map(|a| {
            std::collections::HashMap::from([
                (MODEL_KEY.to_string(), a.model.clone()),
                (FINGERPRINT_KEY.to_string(), format!("{:016x}", a.fingerprint)),
            ])
        });
        safetensors::serialize(views, meta).map_err(|e| RuntimeError::weight_file_from("cannot serialise", e))
    }

    /// Parses safetensors bytes (f32 tensors only).
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| RuntimeError::weight_file_from("not a valid safetensors file", e))?;
        let mut store = Self::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(RuntimeError::weight_file(format!(
                    "tensor `{name}` is {:?}, expected F32",
                    view.dtype()
                )));
            }
            let data: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let arr = ArrayD::from_shape_vec(IxDyn(view.shape()), data).map_err(|e| {
                RuntimeError::weight_file_from(format!("tensor `{name}` does not fit its shape"), e)
            })?;
            store.insert(name, arr);
        }
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| RuntimeError::weight_file_from("unreadable header", e))?;
        if let Some(m) = meta.metadata()
            && let (Some(model), Some(fp)) = (m.get(MODEL_KEY), m.get(FINGERPRINT_KEY))
        {
            let fingerprint = u64::from_str_radix(fp, 16).map_err(|_| {
                RuntimeError::weight_file(format!(
                    "metadata `{FINGERPRINT_KEY}` = `{fp}` is not a fingerprint"
                ))
            })?;
            store.architecture = Some(Architecture { model: model.clone(), fingerprint });
        }
        Ok(store)
    }

    /// Reads a safetensors file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| RuntimeError::weight_file_from(format!("{}: cannot read", path.display()), e))?;
        // Name the file once: "weight file: w.safetensors: tensor `k` is ...".
        Self::from_safetensors(&bytes).map_err(|e| match e {
            RuntimeError::WeightFile { what, source } => {
                RuntimeError::WeightFile { what: format!("{}: {what}", path.display()), source }
            }
            other => other,
        })
    }

    /// Writes a safetensors file atomically; refuses to replace an existing file unless
    /// `overwrite`.
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<()> {
        if path.exists() && !overwrite {
            return Err(RuntimeError::weight_file(format!(
                "{} exists; refusing to overwrite it",
                path.display()
            )));
        }
        let bytes = self.to_safetensors()?;
        crate::files::write_atomic(path, &bytes)
            .map_err(|e| RuntimeError::weight_file_from(format!("{}: cannot write", path.display()), e))
    }
}
