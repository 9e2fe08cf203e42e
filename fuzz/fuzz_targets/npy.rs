//! Any bytes as an `.npy` input of `seqc run`/`train`: a tensor or an error. The reader is
//! `seqc`'s own module, included here with the two items it uses from the binary.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// `seqc`'s error type, as the module expects it.
pub struct Failure(pub String);

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

mod commands {
    pub fn write_new(_: &std::path::Path, _: &[u8]) -> Result<(), crate::Failure> {
        Ok(())
    }
}

#[allow(dead_code)]
#[path = "../../cli/src/npy.rs"]
mod npy;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("seqmodel-fuzz-{}.npy", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = npy::read(&path);
    }
});
