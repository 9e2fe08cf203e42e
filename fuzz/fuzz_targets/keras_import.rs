//! Any bytes as a Keras file (`.keras` zip or legacy `.h5`): an import or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = seqmodel_keras::import_bytes(data.to_vec());
});
