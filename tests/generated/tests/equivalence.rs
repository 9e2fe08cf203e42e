//! The generated code gives the interpreter's numbers (≤ 1e-6) and Keras's (the case's
//! tolerance) on every inference case of the conformance suite, through the build.rs API,
//! with weights loaded at run time and baked into the program alike.

use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use seqmodel::{Model, Tensor};

fn npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap();
    match ArrayD::<f32>::read_npy(&bytes[..]) {
        Ok(a) => Tensor::F32(a),
        Err(_) => Tensor::I32(ArrayD::<i32>::read_npy(&bytes[..]).unwrap()),
    }
}

#[test]
fn generated_code_matches_interpreter_and_keras() {
    assert!(check_suite("../shared/conformance") >= 25);
}

/// The inference cases of the layers suite that seqmodel imports; a case that stops
/// importing lowers the count and fails this.
#[test]
fn generated_code_matches_on_the_layers_suite() {
    assert!(check_suite("../shared/conformance-layers") >= 14);
}

/// This repository's Keras cases of operations between layers (`tests/keras`).
#[test]
fn generated_code_matches_on_the_operations_suite() {
    assert!(check_suite("tests/keras") >= 12);
}

/// Checks every inference case of `suite` (relative to the repository) that has a generated
/// model; returns how many.
fn check_suite(suite: &str) -> usize {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(suite);
    let mut dirs: Vec<_> = std::fs::read_dir(&conf).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    let mut checked = 0;
    for dir in dirs {
        let Ok(text) = std::fs::read_to_string(dir.join("case.json")) else { continue };
        let case: serde_json::Value = serde_json::from_str(&text).unwrap();
        if case["kind"] != "inference" {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tol = case["tolerance"]["max_abs"].as_f64().unwrap() as f32;
        let Ok(imported) = seqmodel_keras::import_file(&dir.join("model.keras")) else {
            assert!(suite.ends_with("-layers"), "{name} does not import");
            continue;
        };
        let mut interp = Model::new(imported.program.clone(), &imported.weights).unwrap();
        let mut generated = seqmodel_generated_tests::generated(&name, &imported.weights).unwrap();
        let mut baked = seqmodel_generated_tests::baked(&name).unwrap();
        for call in case["calls"].as_array().unwrap() {
            let reset = call["reset_states_before"].as_bool().unwrap_or(false);
            if reset {
                interp.reset_states();
            }
            let xs: Vec<Tensor> = call["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| npy(&dir.join(f.as_str().unwrap())))
                .collect();
            let a = interp.predict(&xs).unwrap();
            let b = generated(&xs, reset).unwrap();
            assert_eq!(a.len(), b.len(), "{name}");
            // The same weights, read from the program instead of a store: the same numbers.
            assert_eq!(baked(&xs, reset).unwrap(), b, "{name}: baked weights");
            for (k, (x, y)) in a.iter().zip(&b).enumerate() {
                let d = x.iter().zip(y.iter()).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
                assert!(d <= 1e-6, "{name} output {k}: generated vs interpreter {d:e}");
            }
            for (k, f) in call["expected"].as_array().unwrap().iter().enumerate() {
                let Tensor::F32(want) = npy(&dir.join(f.as_str().unwrap())) else { panic!() };
                let d = b[k].iter().zip(want.iter()).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
                assert!(d <= tol, "{name} output {k}: generated vs Keras {d:e}");
            }
        }
        checked += 1;
    }
    checked
}

#[test]
fn generated_examples_run_and_validate_inputs() {
    use seqmodel_generated_tests::ex_autoencoder::Autoencoder;
    let mut ae = Autoencoder::random(5);
    let x = ndarray::Array3::<f32>::from_elem((3, 9, 2), 0.25);
    let y: ndarray::Array3<f32> = ae.predict(&x).unwrap();
    assert_eq!(y.shape(), &[3, 9, 2]);
    // Into the caller's array, whose shape is checked.
    let mut out = ndarray::Array3::<f32>::zeros((3, 9, 2));
    ae.predict_into(&x, &mut out).unwrap();
    assert_eq!(out, y);
    let mut short = ndarray::Array3::<f32>::zeros((3, 8, 2));
    let e = ae.predict_into(x.view(), short.view_mut()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "output 0 of model `Autoencoder` has shape [3, 9, 2], the array given for it [3, 8, 2]"
    );
    let bad = ndarray::Array3::<f32>::zeros((3, 9, 5));
    let e = ae.predict(&bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input `x` of model `Autoencoder`: expected (None, T, 2) f32, got [3, 9, 5] f32"
    );
    assert_eq!(Autoencoder::PARAMS, 16728);
    assert!(ae.weight("Encoder/lstm/kernel").is_some());
}

/// The seed's generation loop: one step per call, the output fed back as the next input,
/// equals one stateful call over the whole sequence.
#[test]
fn stateful_step_generation_matches_a_whole_sequence() {
    use seqmodel_generated_tests::ex_stateful::Generator;
    let mut g = Generator::random(11);
    let mut x = ndarray::Array2::<f32>::from_elem((1, 8), 0.3);
    let mut fed = Vec::new();
    for _ in 0..5 {
        fed.push(x.clone());
        x = g.step(&x).unwrap();
    }
    let last = x;
    let seq = ndarray::concatenate(
        ndarray::Axis(1),
        &fed.iter().map(|a| a.view().insert_axis(ndarray::Axis(1))).collect::<Vec<_>>(),
    )
    .unwrap();
    g.reset_states();
    let whole = g.predict(&seq).unwrap();
    let tail = whole.index_axis(ndarray::Axis(1), 4).to_owned();
    let d = tail.iter().zip(last.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(d < 1e-6, "{d}");
}

/// A hand-written `.seq` loads a Keras file's weights (by Keras's order, shapes checked) and
/// gives Keras's outputs; a file of another architecture is refused.
#[test]
fn hand_written_model_loads_keras_weights() {
    use seqmodel_generated_tests::conformance_autoencoder::Autoencoder;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/autoencoder_nested");
    for file in ["model.keras", "model.h5"] {
        let mut ae = Autoencoder::from_keras(dir.join(file)).unwrap();
        let Tensor::F32(x) = npy(&dir.join("input.npy")) else { panic!() };
        let Tensor::F32(want) = npy(&dir.join("expected.npy")) else { panic!() };
        let got = ae.predict(x.view().into_dimensionality::<ndarray::Ix3>().unwrap()).unwrap();
        let d = got.iter().zip(want.iter()).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        assert!(d <= 1e-5, "{file}: {d:e}");
    }
    let other = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/many_to_one_lstm/model.keras");
    let e = Autoencoder::from_keras(other).err().unwrap();
    assert!(e.to_string().contains("many_to_one_lstm/model.keras"), "{e}");
    // The reason is the error's source, as Rust errors keep their cause.
    let why = std::error::Error::source(&e).unwrap().to_string();
    assert!(why.contains("weight tensors") || why.contains("architectures differ"), "{why}");
}

/// A generated type trains through `trainer()` (its program as written, before the
/// inference passes), and the trained weights load back into the generated type.
#[test]
fn generated_type_trains_and_reloads() {
    use seqmodel::train::{FitOptions, Loss, Optimizer};
    use seqmodel_generated_tests::ex_encoder_decoder::EncoderDecoder;
    let m = EncoderDecoder::random(3);
    let mut t = m.trainer(Loss::MeanSquaredError, Optimizer::adam(0.01)).unwrap();
    let x = ndarray::Array3::from_shape_fn((8, 12, 4), |(i, t, f)| ((i + t * f) as f32 * 0.1).sin());
    let y = ndarray::Array3::from_shape_fn((8, 6, 1), |(i, t, _)| ((i + t) as f32 * 0.2).cos());
    let opts = FitOptions { epochs: 20, batch_size: 4, verbose: 0, ..FitOptions::default() };
    // Arrays go in as they are (views here), with no `Tensor` in sight.
    let before = t.evaluate(x.view(), y.view()).unwrap();
    let h = t.fit(x.view(), y.view(), &opts).unwrap();
    assert!(h.loss[19] < h.loss[0], "{:?}", h.loss);
    assert!(t.evaluate(&x, &y).unwrap() < before);
    let mut trained = EncoderDecoder::new(t.weights()).unwrap();
    let out = trained.predict(&x).unwrap();
    let interp = t.to_model().unwrap().predict(&[Tensor::F32(x.clone().into_dyn())]).unwrap().remove(0);
    let d = out.iter().zip(interp.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(d <= 1e-6, "{d}");
    // `save` and `load` round-trip; `save` never overwrites, `save_overwriting` does.
    let dir = std::env::temp_dir().join(format!("seqmodel-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ed.safetensors");
    let _ = std::fs::remove_file(&path);
    trained.save(&path).unwrap();
    let mut loaded = EncoderDecoder::load(&path).unwrap();
    assert_eq!(loaded.predict(&x).unwrap(), out);
    let e = EncoderDecoder::random(4).save(&path).unwrap_err().to_string();
    assert!(e.contains("exists"), "{e}");
    assert_eq!(
        EncoderDecoder::load(&path).unwrap().predict(&x).unwrap(),
        out,
        "the refused save changed the file"
    );
    EncoderDecoder::random(4).save_overwriting(&path).unwrap();
    assert_ne!(EncoderDecoder::load(&path).unwrap().predict(&x).unwrap(), out);
    // The file records its architecture: another model refuses it.
    let other = seqmodel_generated_tests::ex_encoder_decoder_states::Seq2Seq::load(&path);
    assert!(other.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The generated type's fingerprint is its program's, as the compiler computes it from the
/// source (so weights saved by `seqc train` load into it, and others' do not).
#[test]
fn generated_fingerprint_matches_the_compiled_program() {
    use seqmodel_generated_tests::ex_encoder_decoder::EncoderDecoder;
    assert_eq!(EncoderDecoder::program().fingerprint(), EncoderDecoder::FINGERPRINT);
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/encoder_decoder.seq"))
            .unwrap();
    let compiled = seqmodel_compiler::compile(&src).unwrap();
    assert_eq!(compiled.program("EncoderDecoder").unwrap().fingerprint(), EncoderDecoder::FINGERPRINT);
}

/// A stateful model whose time length is fixed at 1 has `step` too: stepping it through a
/// sequence equals the same layers and weights run over the whole sequence at once.
#[test]
fn a_model_of_one_step_steps_like_the_same_layers_over_a_sequence() {
    use seqmodel_generated_tests::one_step::{AnyLength, OneStep};
    let store = seqmodel::WeightStore::random_from_specs(AnyLength::weight_specs(), 7, 0.4);
    let mut renamed = seqmodel::WeightStore::new();
    for key in store.keys() {
        renamed.insert(key.replacen("AnyLength/", "OneStep/", 1), store.get(key).unwrap().clone());
    }
    let mut one = OneStep::from_weights(renamed).unwrap();
    let mut any = AnyLength::from_weights(store).unwrap();
    let steps = 6;
    let seq = ndarray::Array3::from_shape_fn((1, steps, 8), |(_, t, f)| ((t * 8 + f) as f32 * 0.37).sin());
    let whole = any.predict(&seq).unwrap();
    for t in 0..steps {
        let y: ndarray::Array2<f32> = one.step(seq.index_axis(ndarray::Axis(1), t)).unwrap();
        assert_eq!(y.shape(), &[1, 8]);
        let want = whole.index_axis(ndarray::Axis(1), t);
        let d = y.iter().zip(want.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(d < 1e-6, "step {t}: {d}");
    }
    one.reset_states();
    let first = one.step(seq.index_axis(ndarray::Axis(1), 0)).unwrap();
    assert!(
        first.iter().zip(whole.index_axis(ndarray::Axis(1), 0).iter()).all(|(a, b)| (a - b).abs() < 1e-6)
    );
}
