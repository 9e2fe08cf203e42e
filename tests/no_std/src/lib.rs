//! A `#![no_std]` crate without `alloc` that runs seqmodel's `gen-stateful` model
//! (`bench/models/gen_stateful.seq`: a stateful LSTM(64) on 8 features and a Dense(8)) with its
//! weights compiled in from `models/gen_stateful.safetensors`: no heap, no file, no `std`. CI
//! builds it on its own (`cargo build -p seqmodel-no-std`, seqmodel without its `std`
//! feature), and its tests compare it with the std build of the same model. The other
//! models here are what the tests also need: a GRU with softmax, and fixed-window models
//! run over a whole window per call.

#![no_std]

seqmodel::seqmodel!(
    "../../bench/models/gen_stateful.seq",
    weights = "models/gen_stateful.safetensors",
    no_std
);

/// A second model for the tests: a stateful GRU and a softmax Dense.
pub mod gru {
    seqmodel::seqmodel!("models/gru_softmax.seq", weights = "models/gru_softmax.safetensors", no_std);
}

/// Fixed windows: a many-to-one LSTM classifier and a GRU mapped step by step.
pub mod window {
    seqmodel::seqmodel!("models/window_last.seq", weights = "models/window_last.safetensors", no_std);
    seqmodel::seqmodel!("models/window_seq.seq", weights = "models/window_seq.safetensors", no_std);
}

/// The seed's generation loop: from `first`, each step's output is the next step's input;
/// `out[i]` is the output of step `i`. Stops at the first non-finite value.
///
/// ```
/// let mut model = seqmodel_no_std::GenStateful::new();
/// let mut out = [[0.0; 8]; 3];
/// seqmodel_no_std::generate(&mut model, [0.1; 8], &mut out).unwrap();
/// assert!(out.iter().flatten().all(|v| v.is_finite() && *v != 0.0));
/// ```
pub fn generate(
    model: &mut GenStateful,
    first: [f32; 8],
    out: &mut [[f32; 8]],
) -> Result<(), seqmodel::NonFinite> {
    let mut x = first;
    for o in out {
        x = *model.step(&x)?;
        *o = x;
    }
    Ok(())
}
