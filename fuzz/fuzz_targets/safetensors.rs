//! Any bytes as a safetensors weight file: a weight store or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = seqmodel_runtime::WeightStore::from_safetensors(data);
});
