//! Weights baked into the generated code: a safetensors file, checked against a model's
//! weight table when the model is compiled, so that a missing or mis-shaped weight is a
//! compile error naming the file and the weight, and the program that runs reads no file.

use std::path::{Path, PathBuf};

use crate::ir::{self, Program};

/// Why a weight file cannot be baked into a model.
#[derive(Debug, thiserror::Error)]
pub enum BakeError {
    /// The file cannot be read.
    #[error("cannot read the weight file `{file}`: {source}")]
    Read {
        /// The file, as the user wrote it.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not safetensors.
    #[error("the weight file `{file}` is not a valid safetensors file: {source}")]
    Format {
        /// The file.
        file: String,
        /// The parser's reason.
        source: safetensors::SafeTensorError,
    },
    /// A tensor is not f32.
    #[error("the weight file `{file}`: tensor `{key}` is {dtype}, model `{model}` needs F32")]
    DType {
        /// The file.
        file: String,
        /// The model.
        model: String,
        /// The tensor.
        key: String,
        /// Its element type.
        dtype: String,
    },
    /// The tensors are not the model's weight table.
    #[error("the weight file `{file}` does not fit model `{model}`: {source}")]
    Table {
        /// The file.
        file: String,
        /// The model.
        model: String,
        /// The first difference.
        source: ir::WeightMismatch,
    },
    /// A weight holds NaN or an infinity.
    #[error("the weight file `{file}`: weight `{key}` has a non-finite value at flat index {index}")]
    NonFinite {
        /// The file.
        file: String,
        /// The weight.
        key: String,
        /// The first bad element.
        index: usize,
    },
    /// The `.seq` file has no model to take the weights.
    #[error("the weight file `{file}` has no model to go into")]
    NoModel {
        /// The file.
        file: String,
    },
    /// The file records that its weights were made for another architecture.
    #[error("the weight file `{file}` was saved for model `{made_for}`, another architecture than `{model}`")]
    OtherArchitecture {
        /// The file.
        file: String,
        /// The model being compiled.
        model: String,
        /// The model the file names.
        made_for: String,
    },
}

/// A weight file checked against a model: where to include it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BakedWeights {
    /// The absolute path that the generated `include_bytes!` reads.
    pub path: PathBuf,
    /// The file as the user named it (for documentation and messages).
    pub shown: String,
}

/// Reads the safetensors file at `path` (named `shown` in messages) and checks it against
/// `program`'s weight table: every weight present and F32, every shape right, none extra,
/// every value finite, and, when the file records an architecture, `program`'s.
///
/// ```
/// let c = seqmodel_compiler::compile("model M(x: [3]) -> [2] { x -> Dense(2) }").unwrap();
/// let err = seqmodel_compiler::baked::check_weight_file("no/such.safetensors".as_ref(), "such", &c.programs[0]);
/// assert!(err.unwrap_err().to_string().contains("cannot read the weight file `such`"));
/// ```
pub fn check_weight_file(path: &Path, shown: &str, program: &Program) -> Result<BakedWeights, BakeError> {
    let file = shown.to_string();
    let bytes = std::fs::read(path).map_err(|source| BakeError::Read { file: file.clone(), source })?;
    check_weight_bytes(&bytes, shown, program)?;
    let path = std::path::absolute(path).map_err(|source| BakeError::Read { file, source })?;
    Ok(BakedWeights { path, shown: shown.to_string() })
}

/// [`check_weight_file`] against a file's main model (its last, which is the one that gets
/// baked weights), `None` when the file has none: the one entry of `seqmodel!`, the build.rs
/// `Builder` and `seqc build`.
pub fn check_for_main(path: &Path, shown: &str, main: Option<&Program>) -> Result<BakedWeights, BakeError> {
    let main = main.ok_or_else(|| BakeError::NoModel { file: shown.to_string() })?;
    check_weight_file(path, shown, main)
}

/// The values of a weight file that [`check_weight_file`] accepted, by key, each row-major
/// (for code that bakes them in as arrays).
pub fn weight_values(baked: &BakedWeights) -> Result<std::collections::HashMap<String, Vec<f32>>, BakeError> {
    let file = baked.shown.clone();
    let bytes =
        std::fs::read(&baked.path).map_err(|source| BakeError::Read { file: file.clone(), source })?;
    let st =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|source| BakeError::Format { file, source })?;
    Ok(st
        .tensors()
        .into_iter()
        .map(|(key, view)| {
            let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            (key, values.collect())
        })
        .collect())
}

/// [`check_weight_file`] on the file's bytes.
pub fn check_weight_bytes(bytes: &[u8], shown: &str, program: &Program) -> Result<(), BakeError> {
    let file = shown.to_string();
    let model = program.name.clone();
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|source| BakeError::Format { file: file.clone(), source })?;
    let specs = program.weight_specs();
    let refs: Vec<(&str, &[usize])> = specs.iter().map(|w| (w.key.as_str(), w.shape.as_slice())).collect();
    let shape_of = |k: &str| st.tensor(k).ok().map(|t| t.shape().to_vec());
    let names = st.names();
    ir::check_weight_table(&refs, names.iter().map(|s| &**s), shape_of)
        .map_err(|source| BakeError::Table { file: file.clone(), model: model.clone(), source })?;
    for (key, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            let dtype = format!("{:?}", view.dtype());
            return Err(BakeError::DType { file, model, key, dtype });
        }
        let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if let Some(index) = values.into_iter().position(|v| !v.is_finite()) {
            return Err(BakeError::NonFinite { file, key, index });
        }
    }
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|source| BakeError::Format { file: file.clone(), source })?;
    if let Some(meta) = header.metadata()
        && let (Some(made_for), Some(fp)) =
            (meta.get(ir::MODEL_METADATA_KEY), meta.get(ir::ARCHITECTURE_METADATA_KEY))
        && u64::from_str_radix(fp, 16).ok() != Some(program.fingerprint())
    {
        return Err(BakeError::OtherArchitecture { file, model, made_for: made_for.clone() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use safetensors::Dtype;
    use safetensors::tensor::TensorView;

    use super::*;

    fn program() -> Program {
        crate::compile("model M(x: [3]) -> [2] { x -> Dense(2) }").unwrap().programs.remove(0)
    }

    /// A safetensors file of `(key, shape, values)` as f32, with optional metadata.
    fn file(tensors: &[(&str, &[usize], &[f32])], meta: Option<HashMap<String, String>>) -> Vec<u8> {
        let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(k, s, v)| (k.to_string(), s.to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views: Vec<(String, TensorView<'_>)> = data
            .iter()
            .map(|(k, s, d)| (k.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap()))
            .collect();
        safetensors::serialize(views, meta).unwrap()
    }

    fn keys(p: &Program) -> (String, String) {
        let s = p.weight_specs();
        let kernel = s.iter().find(|w| w.key.ends_with("kernel")).unwrap().key.clone();
        let bias = s.iter().find(|w| w.key.ends_with("bias")).unwrap().key.clone();
        (kernel, bias)
    }

    #[test]
    fn the_models_own_table_passes() {
        let p = program();
        let (k, b) = keys(&p);
        let bytes = file(&[(&k, &[3, 2], &[0.5; 6]), (&b, &[2], &[0.0; 2])], None);
        check_weight_bytes(&bytes, "w.safetensors", &p).unwrap();
    }

    #[test]
    fn a_mis_shaped_weight_names_the_file_and_the_weight() {
        let p = program();
        let (k, b) = keys(&p);
        let bytes = file(&[(&k, &[2, 3], &[0.5; 6]), (&b, &[2], &[0.0; 2])], None);
        let e = check_weight_bytes(&bytes, "w.safetensors", &p).unwrap_err().to_string();
        assert!(e.contains("`w.safetensors`") && e.contains(&format!("`{k}` has shape [2, 3]")), "{e}");
    }

    #[test]
    fn missing_extra_non_finite_and_garbage_are_refused() {
        let p = program();
        let (k, b) = keys(&p);
        let missing = file(&[(&k, &[3, 2], &[0.5; 6])], None);
        let e = check_weight_bytes(&missing, "w", &p).unwrap_err().to_string();
        assert!(e.contains(&format!("missing weight `{b}`")), "{e}");
        let extra = file(&[(&k, &[3, 2], &[0.5; 6]), (&b, &[2], &[0.0; 2]), ("M/x", &[1], &[1.0])], None);
        let e = check_weight_bytes(&extra, "w", &p).unwrap_err().to_string();
        assert!(e.contains("\"M/x\""), "{e}");
        let nan = file(&[(&k, &[3, 2], &[0.5, 0.5, f32::NAN, 0.5, 0.5, 0.5]), (&b, &[2], &[0.0; 2])], None);
        let e = check_weight_bytes(&nan, "w", &p).unwrap_err().to_string();
        assert!(e.contains("non-finite value at flat index 2"), "{e}");
        let e = check_weight_bytes(b"\x08\0\0\0\0\0\0\0{\"a\":1}", "w", &p).unwrap_err();
        assert!(matches!(e, BakeError::Format { .. }), "{e}");
    }

    #[test]
    fn weights_saved_for_another_architecture_are_refused() {
        let p = program();
        let (k, b) = keys(&p);
        let tensors: &[(&str, &[usize], &[f32])] = &[(&k, &[3, 2], &[0.5; 6]), (&b, &[2], &[0.0; 2])];
        let tagged = |fp: u64| {
            Some(HashMap::from([
                (ir::MODEL_METADATA_KEY.to_string(), "Other".to_string()),
                (ir::ARCHITECTURE_METADATA_KEY.to_string(), format!("{fp:016x}")),
            ]))
        };
        let e = check_weight_bytes(&file(tensors, tagged(p.fingerprint() ^ 1)), "w", &p).unwrap_err();
        assert!(matches!(e, BakeError::OtherArchitecture { ref made_for, .. } if made_for == "Other"), "{e}");
        check_weight_bytes(&file(tensors, tagged(p.fingerprint())), "w", &p).unwrap();
    }
}
