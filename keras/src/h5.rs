//! Reading Keras weight files (HDF5) with the pure-Rust `hdf5-reader`.

use hdf5_reader::Hdf5File;
use ndarray::ArrayD;

use crate::error::{ImportError, Result};

fn h5err(what: &str, e: impl std::fmt::Display) -> ImportError {
    ImportError::Hdf5(format!("{what}: {e}"))
}

/// Opens HDF5 bytes. No dataset may decode to more than 16 times the file's size (Keras
/// stores weights uncompressed; a few bytes declaring a huge chunked kernel made the reader
/// allocate gigabytes before any shape was checked).
pub fn open(bytes: Vec<u8>) -> Result<Hdf5File> {
    let budget = bytes.len().saturating_mul(16).saturating_add(1 << 20);
    let options = hdf5_reader::OpenOptions::default().with_max_read_bytes(budget);
    Hdf5File::from_vec_with_options(bytes, options).map_err(|e| h5err("cannot open the HDF5 data", e))
}

/// Reads a float dataset.
pub fn read_f32(file: &Hdf5File, path: &str) -> Result<ArrayD<f32>> {
    let ds = file.dataset(path).map_err(|e| h5err(&format!("dataset `{path}`"), e))?;
    ds.read_array::<f32>().map_err(|e| h5err(&format!("reading `{path}` as float32"), e))
}

/// Reads a string attribute of a group (`/` for the root).
pub fn group_attr_string(file: &Hdf5File, group: &str, name: &str) -> Result<String> {
    let g = if group == "/" { file.root_group() } else { file.group(group) }
        .map_err(|e| h5err(&format!("group `{group}`"), e))?;
    let a = g.attribute(name).map_err(|e| h5err(&format!("attribute `{name}` of `{group}`"), e))?;
    a.read_string().map_err(|e| h5err(&format!("attribute `{name}` of `{group}`"), e))
}

/// Reads a string-list attribute of a group (an empty float array counts as an empty list, as
/// h5py writes it).
pub fn group_attr_strings(file: &Hdf5File, group: &str, name: &str) -> Result<Vec<String>> {
    let g = file.group(group).map_err(|e| h5err(&format!("group `{group}`"), e))?;
    let a = g.attribute(name).map_err(|e| h5err(&format!("attribute `{name}` of `{group}`"), e))?;
    if a.num_elements().unwrap_or(0) == 0 {
        return Ok(Vec::new());
    }
    a.read_strings().map_err(|e| h5err(&format!("attribute `{name}` of `{group}`"), e))
}

/// Every dataset path below `group` (recursively). Each group is visited once, by its
/// object address, so a hard-link cycle (a group linked inside itself) or a shared group
/// costs nothing; children are opened from their parent, never re-resolved from the root.
pub fn dataset_paths(file: &Hdf5File, group: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let start = group.trim_end_matches('/');
    let root = if start.is_empty() { file.root_group() } else { file.group(start) };
    let Ok(root) = root else { return Ok(out) };
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(start.to_string(), root)];
    while let Some((path, g)) = stack.pop() {
        if !seen.insert(g.address()) {
            continue;
        }
        if seen.len() > 100_000 {
            return Err(ImportError::Hdf5("more than 100000 groups".into()));
        }
        let (groups, datasets) = g.member_names().map_err(|e| h5err(&format!("listing `{path}`"), e))?;
        let join = |n: &str| if path.is_empty() { n.to_string() } else { format!("{path}/{n}") };
        out.extend(datasets.iter().map(|d| join(d)));
        for name in &groups {
            if let Ok(child) = g.group(name) {
                stack.push((join(name), child));
            }
        }
    }
    Ok(out)
}
