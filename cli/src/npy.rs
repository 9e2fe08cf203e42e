//! Reading and writing `.npy` files as runtime tensors.

use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use seqmodel_runtime::Tensor;

use crate::Failure;

/// Reads a float32 or int32 `.npy` file (int64 token ids are narrowed when they fit).
pub fn read(path: &Path) -> Result<Tensor, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    if let Ok(a) = ArrayD::<f32>::read_npy(&bytes[..]) {
        return Ok(Tensor::F32(a));
    }
    if let Ok(a) = ArrayD::<i32>::read_npy(&bytes[..]) {
        return Ok(Tensor::I32(a));
    }
    match ArrayD::<i64>::read_npy(&bytes[..]) {
        Ok(a) => {
            if a.iter().any(|v| i32::try_from(*v).is_err()) {
                return Err(Failure(format!("{}: int64 values do not fit in int32", path.display())));
            }
            Ok(Tensor::I32(a.mapv(|v| v as i32)))
        }
        Err(e) => Err(Failure(format!("{}: not a float32/int32 .npy array ({e})", path.display()))),
    }
}

/// Writes a float32 `.npy` file.
pub fn write(path: &Path, a: &ArrayD<f32>) -> Result<(), Failure> {
    let mut buf = Vec::new();
    a.write_npy(&mut buf).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    crate::commands::write_new(path, &buf)
}
