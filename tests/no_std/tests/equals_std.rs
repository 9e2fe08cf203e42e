//! The `no_std` gen-stateful model against the std build of the same model and against Keras's
//! LSTM step computed here in f64 from the weight file.

use seqmodel_no_std::GenStateful;

/// The std build: the same `.seq` file, its weights loaded from the file at run time.
mod std_build {
    seqmodel::seqmodel!("../../bench/models/gen_stateful.seq");
    seqmodel::seqmodel!("models/gru_softmax.seq");
    seqmodel::seqmodel!("models/window_last.seq");
    seqmodel::seqmodel!("models/window_seq.seq");
}

const WEIGHTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/gen_stateful.safetensors");
const STEPS: usize = 200;
const FIRST: [f32; 8] = [0.3, -0.2, 0.1, 0.5, -0.4, 0.05, 0.25, -0.15];

/// The generation loop of the std build through `step` on ndarray arrays: the layers' own
/// forward pass, not the step kernels that both `step_one` and the `no_std` code run.
fn std_outputs() -> Vec<[f32; 8]> {
    let mut m = std_build::GenStateful::from_safetensors(WEIGHTS).unwrap();
    let mut x = FIRST;
    (0..STEPS)
        .map(|_| {
            let y = m.step(&seqmodel::ndarray::Array2::from_shape_vec((1, 8), x.to_vec()).unwrap()).unwrap();
            x = y.as_slice().unwrap().try_into().unwrap();
            x
        })
        .collect()
}

fn no_std_outputs(m: &mut GenStateful) -> Vec<[f32; 8]> {
    let mut out = vec![[0.0; 8]; STEPS];
    seqmodel_no_std::generate(m, FIRST, &mut out).unwrap();
    out
}

fn max_difference(a: &[[f32; 8]], b: &[[f32; 8]]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn no_std_steps_equal_the_std_build() {
    let want = std_outputs();
    let got = no_std_outputs(&mut GenStateful::new());
    let diff = max_difference(&got, &want);
    println!("max |no_std - std| over {STEPS} steps: {diff}");
    assert!(diff <= 1e-6, "max |no_std - std| over {STEPS} steps = {diff}");
    // Not a constant: the loop moves from its first output to where it settles.
    assert!(max_difference(&got[..1], &got[STEPS - 1..]) > 1e-2, "{:?}", [got[0], got[STEPS - 1]]);
}

/// Keras's LSTM (sigmoid gates, tanh) and Dense in f64 on the file's row-major weights.
#[test]
fn no_std_steps_match_an_f64_reference() {
    let w = seqmodel::WeightStore::load(WEIGHTS.as_ref()).unwrap();
    let get = |k: &str| -> Vec<f64> { w.get(k).unwrap().iter().map(|v| *v as f64).collect() };
    let (k, r, b) = (
        get("GenStateful/lstm/kernel"),
        get("GenStateful/lstm/recurrent_kernel"),
        get("GenStateful/lstm/bias"),
    );
    let (dk, db) = (get("GenStateful/dense/kernel"), get("GenStateful/dense/bias"));
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let (u, g) = (64, 256);
    let (mut h, mut c) = (vec![0.0f64; u], vec![0.0f64; u]);
    let mut x: Vec<f64> = FIRST.iter().map(|v| *v as f64).collect();
    let got = no_std_outputs(&mut GenStateful::new());
    for (step, out) in got.iter().enumerate() {
        let z: Vec<f64> = (0..g)
            .map(|j| {
                b[j] + (0..8).map(|p| x[p] * k[p * g + j]).sum::<f64>()
                    + (0..u).map(|p| h[p] * r[p * g + j]).sum::<f64>()
            })
            .collect();
        for j in 0..u {
            c[j] = sigmoid(z[u + j]) * c[j] + sigmoid(z[j]) * z[2 * u + j].tanh();
            h[j] = sigmoid(z[3 * u + j]) * c[j].tanh();
        }
        x = (0..8).map(|j| db[j] + (0..u).map(|p| h[p] * dk[p * 8 + j]).sum::<f64>()).collect();
        for (j, (o, want)) in out.iter().zip(&x).enumerate() {
            assert!((*o as f64 - want).abs() <= 1e-4, "step {step} output {j}: {o} vs {want}");
        }
    }
}

#[test]
fn reset_starts_over_and_a_nan_input_is_an_error_that_keeps_the_states() {
    let mut m = GenStateful::new();
    let first = no_std_outputs(&mut m);
    m.reset_states();
    assert_eq!(no_std_outputs(&mut m), first);

    let mut a = GenStateful::new();
    let mut b = GenStateful::new();
    a.step(&FIRST).unwrap();
    b.step(&FIRST).unwrap();
    let mut bad = FIRST;
    bad[3] = f32::NAN;
    let err = a.step(&bad).unwrap_err();
    assert_eq!(err, seqmodel::NonFinite { input: "x", index: 3 });
    assert_eq!(err.to_string(), "input `x` has a non-finite value (NaN or infinity) at index 3");
    assert_eq!(a.step(&FIRST).unwrap(), b.step(&FIRST).unwrap());
    assert_eq!(GenStateful::PARAMS, 19208);
    assert_eq!((GenStateful::INPUT_FEATURES, GenStateful::OUTPUT_FEATURES), (8, 8));
}

/// The GRU model (its output a softmax) against its std build's `step` on ndarray arrays (the
/// layers' own forward pass, not the step kernels), fed a fixed signal.
#[test]
fn a_stateful_gru_with_softmax_equals_the_std_build() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/models/gru_softmax.safetensors");
    let mut want = std_build::GruSoftmax::from_safetensors(path).unwrap();
    let mut got = seqmodel_no_std::gru::GruSoftmax::new();
    for t in 0..50 {
        let x = [(t as f32 * 0.3).sin(), (t as f32 * 0.7).cos(), 0.5 - (t % 5) as f32 * 0.2];
        let a = *got.step(&x).unwrap();
        let b = want.step(&seqmodel::ndarray::Array2::from_shape_vec((1, 3), x.to_vec()).unwrap()).unwrap();
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(diff <= 1e-6, "step {t}: {a:?} vs {b:?}");
        assert!((a[0] + a[1] - 1.0).abs() <= 1e-6 && a[0] > 0.0 && a[1] > 0.0, "softmax {a:?}");
    }
    got.reset_states();
    want.reset_states();
    assert_eq!(got.step(&[0.1, 0.2, 0.3]).unwrap(), want.step_one(&[0.1, 0.2, 0.3]).unwrap());
    // And the std build's two steps agree with each other on the next one.
    let x = [0.4, -0.1, 0.2];
    let b = want.step(&seqmodel::ndarray::Array2::from_shape_vec((1, 3), x.to_vec()).unwrap()).unwrap();
    assert_eq!(&got.step(&x).unwrap()[..], b.as_slice().unwrap());
}

fn window(seed: usize) -> [[f32; 3]; 12] {
    std::array::from_fn(|t| std::array::from_fn(|f| (((t * 3 + f + seed) as f32) * 0.37).sin()))
}

fn as_array3(x: &[[f32; 3]; 12]) -> seqmodel::ndarray::Array3<f32> {
    seqmodel::ndarray::Array3::from_shape_vec((1, 12, 3), x.iter().flatten().copied().collect()).unwrap()
}

/// A fixed-window classifier over whole windows equals the std build's `predict`, window after
/// window (its LSTM starts each from zeros), and a NaN is an error with its flat index.
#[test]
fn fixed_windows_equal_the_std_build() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut want =
        std_build::WindowLast::from_safetensors(format!("{dir}/models/window_last.safetensors")).unwrap();
    let mut got = seqmodel_no_std::window::WindowLast::new();
    for seed in 0..5 {
        let x = window(seed);
        let a = *got.predict(&x).unwrap();
        let b = want.predict(&as_array3(&x)).unwrap();
        let diff = a.iter().zip(b.iter()).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(diff <= 1e-6, "window {seed}: {a:?} vs {b:?}");
        assert!((a[0] + a[1] - 1.0).abs() <= 1e-6, "softmax {a:?}");
    }
    let mut bad = window(0);
    bad[4][2] = f32::INFINITY;
    assert_eq!(got.predict(&bad).unwrap_err(), seqmodel::NonFinite { input: "x", index: 4 * 3 + 2 });

    let mut want =
        std_build::WindowSeq::from_safetensors(format!("{dir}/models/window_seq.safetensors")).unwrap();
    let mut got = seqmodel_no_std::window::WindowSeq::new();
    for seed in 0..3 {
        let x = window(seed);
        let a = *got.predict(&x).unwrap();
        let b = want.predict(&as_array3(&x)).unwrap();
        let diff = a.iter().flatten().zip(b.iter()).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
        assert!(diff <= 1e-6, "window {seed}: max difference {diff}");
        assert!(a[11] != a[10], "one row per step");
    }
}
