//! Reading and writing `.npy` files as runtime tensors.

use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use seqmodel_runtime::Tensor;

use crate::Failure;

/// Checks an `.npy` header against the bytes that follow it before anything is allocated:
/// a header that declares more (or fewer) values than the file holds is an error, never an
/// allocation of what it claims. Returns the size of the data in bytes.
fn check_header(bytes: &[u8]) -> Result<usize, String> {
    let magic = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != magic {
        return Err("not an .npy file (no \\x93NUMPY magic)".into());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => {
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!("unknown .npy format version {v}")),
    };
    let header = bytes
        .get(start..start.saturating_add(len))
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("the header is truncated or not text")?;
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|r| r.split('\'').nth(1))
        .ok_or("the header has no 'descr'")?;
    let item: usize = descr
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .map_err(|_| format!("unknown dtype '{descr}'"))?;
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|r| r.split('(').nth(1))
        .and_then(|r| r.split(')').next())
        .ok_or("the header has no 'shape'")?;
    // The product of the non-zero lengths must fit in an `isize` even when another length
    // is 0 (ndarray's own rule; it panicked on such shapes).
    let too_many = || format!("shape ({shape}) has more values than any file can hold");
    let (mut nonzero, mut empty) = (1usize, false);
    for d in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let d: usize = d.parse().map_err(|_| format!("shape entry `{d}` is not a size"))?;
        if d == 0 {
            empty = true;
        } else {
            nonzero = nonzero.checked_mul(d).filter(|n| *n <= isize::MAX as usize).ok_or_else(too_many)?;
        }
    }
    let values = if empty { 0 } else { nonzero };
    let data = bytes.len() - (start + len);
    match values.checked_mul(item) {
        Some(need) if need == data => Ok(data),
        Some(need) => Err(format!(
            "the header declares shape ({shape}) of {descr}, {need} bytes of data, but the file holds {data}"
        )),
        None => Err(too_many()),
    }
}

/// Reads a float32 or int32 `.npy` file (float64 values and int64 token ids are narrowed
/// when they fit).
pub fn read(path: &Path) -> Result<Tensor, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let data = check_header(&bytes).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    // Decoding copies the data into an array: say so if that cannot be allocated, rather
    // than abort in the middle.
    if Vec::<u8>::new().try_reserve_exact(data).is_err() {
        return Err(Failure(format!(
            "{}: its {data} bytes of data cannot be allocated a second time to decode them",
            path.display()
        )));
    }
    if let Ok(a) = ArrayD::<f32>::read_npy(&bytes[..]) {
        return Ok(Tensor::F32(a));
    }
    if let Ok(a) = ArrayD::<i32>::read_npy(&bytes[..]) {
        return Ok(Tensor::I32(a));
    }
    // NumPy's default float type: narrowed as Keras narrows its inputs to float32.
    if let Ok(a) = ArrayD::<f64>::read_npy(&bytes[..]) {
        if let Some(i) = a.iter().position(|v| v.is_finite() && v.abs() > f32::MAX as f64) {
            return Err(Failure(format!(
                "{}: the float64 value at flat index {i} does not fit in float32",
                path.display()
            )));
        }
        return Ok(Tensor::F32(a.mapv(|v| v as f32)));
    }
    match ArrayD::<i64>::read_npy(&bytes[..]) {
        Ok(a) => {
            if a.iter().any(|v| i32::try_from(*v).is_err()) {
                return Err(Failure(format!("{}: int64 values do not fit in int32", path.display())));
            }
            Ok(Tensor::I32(a.mapv(|v| v as i32)))
        }
        Err(e) => Err(Failure(format!(
            "{}: not a float32, float64, int32 or int64 .npy array ({e})",
            path.display()
        ))),
    }
}

/// Writes a float32 `.npy` file.
pub fn write(path: &Path, a: &ArrayD<f32>) -> Result<(), Failure> {
    let mut buf = Vec::new();
    a.write_npy(&mut buf).map_err(|e| Failure(format!("{}: {e}", path.display())))?;
    crate::commands::write_new(path, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: usize) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend(std::iter::repeat_n(0u8, data));
        b
    }

    /// NumPy's default float64 arrays read as float32 (as Keras casts its inputs); a value
    /// float32 cannot hold is an error naming where it is, not an infinity.
    #[test]
    fn float64_files_are_narrowed_to_float32() {
        let file = |values: &[f64]| {
            let mut b = npy(
                &format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}", values.len()),
                0,
            );
            values.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
            let path =
                std::env::temp_dir().join(format!("seqc-f64-{}-{}.npy", std::process::id(), values.len()));
            std::fs::write(&path, b).unwrap();
            path
        };
        let path = file(&[0.5, -2.25, 1.0e-3]);
        let Ok(Tensor::F32(a)) = read(&path) else { panic!("not read as float32") };
        assert_eq!(a.as_slice().unwrap(), &[0.5f32, -2.25, 1.0e-3]);
        let big = file(&[1.0, 2.0, 3.0, 1.0e300]);
        let e = read(&big).unwrap_err().0;
        assert!(e.contains("flat index 3 does not fit in float32"), "{e}");
        std::fs::remove_file(path).unwrap();
        std::fs::remove_file(big).unwrap();
    }

    /// Headers that lie about their size are errors before any allocation (a 64-byte file
    /// declaring (10^12, 10^6) aborted on the allocation; (0, 2^32, 2^32, 2^32) panicked).
    #[test]
    fn lying_headers_are_errors() {
        let ok = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
        assert!(check_header(&ok).is_ok());
        let e = check_header(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000), }",
            0,
        ));
        assert!(e.unwrap_err().contains("4000000000000000000 bytes of data, but the file holds 0"));
        let e = check_header(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296, 4294967296), }",
            0,
        ));
        assert!(e.unwrap_err().contains("more values"));
        let e = check_header(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20))
            .unwrap_err();
        assert!(e.contains("24 bytes of data, but the file holds 20"), "{e}");
        assert!(check_header(b"\x93NUMPY").is_err());
    }
}
