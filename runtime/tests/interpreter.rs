//! The interpreter checks its inputs and weights and agrees with a naive scalar LSTM.

use ndarray::{Array3, ArrayD, IxDyn};
use seqmodel_runtime::{Model, RuntimeError, Tensor, WeightStore};

fn program(src: &str) -> seqmodel_runtime::ir::Program {
    seqmodel_compiler::compile(src).unwrap().main().unwrap().clone()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A scalar f64 LSTM straight from the equations, independent of the runtime's kernels.
fn naive_lstm(x: &Array3<f32>, k: &ArrayD<f32>, r: &ArrayD<f32>, b: &ArrayD<f32>, u: usize) -> Vec<Vec<f64>> {
    let (bn, t, d) = x.dim();
    let mut out = vec![vec![0.0; u]; bn];
    for bi in 0..bn {
        let (mut h, mut c) = (vec![0.0f64; u], vec![0.0f64; u]);
        for ti in 0..t {
            let mut z = vec![0.0f64; 4 * u];
            for (j, zj) in z.iter_mut().enumerate() {
                let mut s = b[[j]] as f64;
                for p in 0..d {
                    s += x[[bi, ti, p]] as f64 * k[[p, j]] as f64;
                }
                for p in 0..u {
                    s += h[p] * r[[p, j]] as f64;
                }
                *zj = s;
            }
            for j in 0..u {
                let (i, f, g, o) =
                    (sigmoid(z[j]), sigmoid(z[u + j]), z[2 * u + j].tanh(), sigmoid(z[3 * u + j]));
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
            }
        }
        out[bi] = h;
    }
    out
}

#[test]
fn lstm_matches_a_naive_scalar_reference() {
    let p = program("model M(x: [T, 5]) -> [7] { x -> LSTM(7) }");
    let w = WeightStore::random(&p, 3, 0.5);
    let mut m = Model::new(p, &w).unwrap();
    let x = Array3::from_shape_fn((3, 9, 5), |(a, b, c)| ((a * 31 + b * 7 + c * 3) % 11) as f32 / 11.0 - 0.5);
    let y = m.predict(&[Tensor::F32(x.clone().into_dyn())]).unwrap().remove(0);
    let want = naive_lstm(
        &x,
        w.get("M/lstm/kernel").unwrap(),
        w.get("M/lstm/recurrent_kernel").unwrap(),
        w.get("M/lstm/bias").unwrap(),
        7,
    );
    for b in 0..3 {
        for j in 0..7 {
            assert!((y[[b, j]] as f64 - want[b][j]).abs() < 1e-5, "{} vs {}", y[[b, j]], want[b][j]);
        }
    }
}

#[test]
fn wrong_inputs_are_errors_that_say_expected_and_got() {
    let p = program("model M(x: [T, 5]) -> [7] { x -> LSTM(7) }");
    let w = WeightStore::random(&p, 3, 0.5);
    let mut m = Model::new(p, &w).unwrap();
    let e = m.predict(&[Tensor::F32(ArrayD::zeros(IxDyn(&[2, 4, 6])))]).unwrap_err();
    assert_eq!(e.to_string(), "input `x` of model `M`: expected (None, T, 5) f32, got [2, 4, 6] f32");
    let e = m.predict(&[Tensor::I32(ArrayD::zeros(IxDyn(&[2, 4, 5])))]).unwrap_err();
    assert!(matches!(e, RuntimeError::InputShape { .. }));
    let e = m.predict(&[]).unwrap_err();
    assert!(matches!(e, RuntimeError::InputCount { .. }));
    let mut x = ArrayD::zeros(IxDyn(&[1, 3, 5]));
    x[[0, 1, 2]] = f32::NAN;
    let e = m.predict(&[Tensor::F32(x)]).unwrap_err();
    assert!(e.to_string().contains("non-finite"), "{e}");
}

#[test]
fn missing_extra_and_misshaped_weights_name_the_layer() {
    let p = program("model M(x: [T, 5]) -> [7] { x -> LSTM(7) }");
    let mut w = WeightStore::random(&p, 3, 0.5);
    let good = w.clone();
    w.insert("M/lstm/bias", ArrayD::zeros(IxDyn(&[27])));
    let e = Model::new(p.clone(), &w).unwrap_err();
    assert_eq!(e.to_string(), "weight `M/lstm/bias` has shape [27], layer `M/lstm` needs [28]");
    let mut w = good.clone();
    w.insert("M/other/kernel", ArrayD::zeros(IxDyn(&[1])));
    assert!(matches!(Model::new(p.clone(), &w).unwrap_err(), RuntimeError::ExtraWeights { .. }));
    let mut w2 = WeightStore::new();
    for k in good.keys().filter(|k| !k.ends_with("bias")) {
        w2.insert(k, good.get(k).unwrap().clone());
    }
    assert!(matches!(Model::new(p, &w2).unwrap_err(), RuntimeError::MissingWeight { .. }));
}

#[test]
fn embedding_ids_out_of_range_are_errors() {
    let p = program("model M(w: [T] of i32) -> [T, 4] { w -> Embedding(10, 4) }");
    let w = WeightStore::random(&p, 1, 0.5);
    let mut m = Model::new(p, &w).unwrap();
    let ids = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1, 10, 2]).unwrap();
    let e = m.predict(&[Tensor::I32(ids)]).unwrap_err();
    assert!(e.to_string().contains("token id 10 at index [0, 1]"), "{e}");
}

#[test]
fn stateful_state_carries_and_resets() {
    let p = program(
        "model G(x: [T, 3]) -> [T, 3] where batch = 2 { x -> LSTM(3, stateful=true, return_sequences=true) }",
    );
    let w = WeightStore::random(&p, 5, 0.5);
    let mut m = Model::new(p.clone(), &w).unwrap();
    let x = Array3::from_shape_fn((2, 4, 3), |(a, b, c)| (a + b + c) as f32 * 0.1).into_dyn();
    let whole = Model::new(p, &w).unwrap().predict(&[Tensor::F32(x.clone())]).unwrap().remove(0);
    // Two chunks of 2 steps carry the state: the second chunk equals steps 2..4 of one call.
    let a = m
        .predict(&[Tensor::F32(x.slice(ndarray::s![.., 0..2, ..]).to_owned().into_dyn())])
        .unwrap()
        .remove(0);
    let b = m
        .predict(&[Tensor::F32(x.slice(ndarray::s![.., 2..4, ..]).to_owned().into_dyn())])
        .unwrap()
        .remove(0);
    for t in 0..2 {
        for j in 0..3 {
            assert!((a[[1, t, j]] - whole[[1, t, j]]).abs() < 1e-6);
            assert!((b[[1, t, j]] - whole[[1, t + 2, j]]).abs() < 1e-6);
        }
    }
    m.reset_states();
    let again = m
        .predict(&[Tensor::F32(x.slice(ndarray::s![.., 0..2, ..]).to_owned().into_dyn())])
        .unwrap()
        .remove(0);
    assert_eq!(again, a);
    // The fixed batch is enforced.
    let e = m.predict(&[Tensor::F32(ArrayD::zeros(IxDyn(&[3, 2, 3])))]).unwrap_err();
    assert!(e.to_string().contains("batch size 2"), "{e}");
}

#[test]
fn safetensors_round_trip_and_no_silent_overwrite() {
    let p = program("model M(x: [T, 5]) -> [7] { x -> GRU(7) -> Dense(7) }");
    let w = WeightStore::random(&p, 9, 0.5);
    let back = WeightStore::from_safetensors(&w.to_safetensors().unwrap()).unwrap();
    assert_eq!(back, w);
    let dir = std::env::temp_dir().join(format!("seqmodel-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("w.safetensors");
    w.save(&f, false).unwrap();
    assert!(w.save(&f, false).is_err());
    assert_eq!(WeightStore::load(&f).unwrap(), w);
    assert!(WeightStore::from_safetensors(b"garbage").is_err());
}

/// A batch of zero rows is an error for every recurrent layer (it panicked in the
/// recurrence), in the interpreter as in generated code (both bind inputs the same way).
#[test]
fn a_batch_of_zero_rows_is_an_error() {
    for layer in ["LSTM(3)", "GRU(3)", "SimpleRNN(3)", "Bidirectional(LSTM(3))"] {
        let p = program(&format!("model M(x: [T, 2]) -> [_] {{ x -> {layer} }}"));
        let w = WeightStore::random(&p, 1, 0.5);
        let mut m = Model::new(p, &w).unwrap();
        let empty = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[0, 4, 2]));
        let e = m.predict(&[Tensor::F32(empty)]).unwrap_err().to_string();
        assert!(e.contains("no rows"), "{layer}: {e}");
    }
}

/// Weights record the architecture they were made for: the same keys and shapes from a
/// model with another activation or direction do not load unless untagged (they ran
/// silently, 0.32 off); layout and comments of the source change nothing.
#[test]
fn weights_of_another_architecture_do_not_load_silently() {
    let a = program("model M(x: [T, 2]) -> [3] { x -> LSTM(3) }");
    let same = program(
        "// the same model, laid out differently\nmodel M(x: [T, 2]) -> [3] {\n    x\n      -> LSTM(3)\n}",
    );
    let relu = program("model M(x: [T, 2]) -> [3] { x -> LSTM(3, activation=\"relu\") }");
    let back = program("model M(x: [T, 2]) -> [3] { x -> LSTM(3, go_backwards=true) }");
    assert_eq!(a.fingerprint(), same.fingerprint());
    assert_ne!(a.fingerprint(), relu.fingerprint());
    assert_ne!(a.fingerprint(), back.fingerprint());
    let mut w = WeightStore::random(&a, 1, 0.5);
    w.tag(&a);
    let w = WeightStore::from_safetensors(&w.to_safetensors().unwrap()).unwrap();
    assert_eq!(w.architecture().map(|x| x.fingerprint), Some(a.fingerprint()), "the tag is saved");
    assert!(Model::new(same, &w).is_ok());
    for other in [relu, back] {
        let Err(e) = Model::new(other.clone(), &w) else { panic!("another architecture loaded") };
        assert!(matches!(e, RuntimeError::OtherArchitecture { .. }), "{e}");
        let mut forced = w.clone();
        forced.untag();
        assert!(Model::new(other, &forced).is_ok());
    }
}

/// A corrupt weight file is named once in its error ("weight file: X: weight file: ..."
/// repeated itself).
#[test]
fn a_corrupt_weight_file_is_named_once() {
    let dir = std::env::temp_dir().join(format!("seqmodel-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("w.safetensors");
    std::fs::write(&f, b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage").unwrap();
    let e = WeightStore::load(&f).unwrap_err().to_string();
    assert_eq!(e.matches("weight file").count(), 1, "{e}");
    assert_eq!(e.matches("w.safetensors").count(), 1, "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A strided convolution and a pooling over a length known only at run time: the checker
/// names the lengths `(T+1)/2` and `(T+1)/2/2`, the interpreter computes them from the data,
/// and the numbers match a naive scalar convolution (TensorFlow's `same` padding: the extra
/// zero at the end).
#[test]
fn strided_layers_over_run_time_lengths_match_a_naive_reference() {
    let p = program(
        "model M(x: [T, 2]) -> [_, 3] { x -> Conv1D(3, 3, strides=2, padding=\"same\") -> MaxPooling1D(2) }",
    );
    assert_eq!(p.symbols, ["T", "(T+1)/2", "((T+1)/2)/2"]);
    assert!(p.free_symbols().is_empty(), "derived lengths are not arguments");
    let w = WeightStore::random(&p, 5, 0.5);
    let mut m = Model::new(p, &w).unwrap();
    let (k, bias) = (w.get("M/conv1d/kernel").unwrap(), w.get("M/conv1d/bias").unwrap());
    for t in [7usize, 8, 9, 12] {
        let x = ArrayD::from_shape_fn(IxDyn(&[2, t, 2]), |i| {
            ((i[0] * 31 + i[1] * 7 + i[2] * 3) % 11) as f32 / 5.0 - 1.0
        });
        let y = m.predict(&[Tensor::F32(x.clone())]).unwrap().remove(0);
        let conv_len = t.div_ceil(2);
        let left = ((conv_len - 1) * 2 + 3).saturating_sub(t) / 2;
        assert_eq!(y.shape(), &[2, conv_len / 2, 3], "T = {t}");
        for b in 0..2 {
            let conv = |o: usize, f: usize| {
                let mut s = bias[[f]] as f64;
                for tap in 0..3 {
                    let step = (o * 2 + tap) as isize - left as isize;
                    if (0..t as isize).contains(&step) {
                        for c in 0..2 {
                            s += x[[b, step as usize, c]] as f64 * k[[tap, c, f]] as f64;
                        }
                    }
                }
                s
            };
            for o in 0..conv_len / 2 {
                for f in 0..3 {
                    let want = conv(2 * o, f).max(conv(2 * o + 1, f));
                    assert!((y[[b, o, f]] as f64 - want).abs() < 1e-5, "T = {t}, step {o}");
                }
            }
        }
    }
}

/// Stateful layers of different cells one after another: a GRU's one state after an LSTM's
/// two, and units that differ, carried over calls (the second call runs each layer on its
/// carried states in place) as one call over the whole sequence.
#[test]
fn stateful_lstm_then_gru_carry_their_states_over_calls() {
    let p = program(
        "model G(x: [T, 3]) -> [T, 9] where batch = 2 { x -> LSTM(2, stateful=true, return_sequences=true) -> GRU(9, stateful=true, return_sequences=true) }",
    );
    let w = WeightStore::random(&p, 7, 0.5);
    let x =
        Array3::from_shape_fn((2, 6, 3), |(a, b, c)| ((a * 5 + b * 3 + c) % 7) as f32 * 0.1 - 0.3).into_dyn();
    let whole = Model::new(p.clone(), &w).unwrap().predict(&[Tensor::F32(x.clone())]).unwrap().remove(0);
    let mut m = Model::new(p, &w).unwrap();
    for (c, steps) in [(0, 0..2), (1, 2..3), (2, 3..6)] {
        let part = x.slice(ndarray::s![.., steps.clone(), ..]).to_owned().into_dyn();
        let y = m.predict(&[Tensor::F32(part)]).unwrap().remove(0);
        for (i, t) in steps.enumerate() {
            for b in 0..2 {
                for j in 0..9 {
                    let (got, want) = (y[[b, i, j]], whole[[b, t, j]]);
                    assert!((got - want).abs() < 1e-6, "call {c}, step {t}: {got} vs {want}");
                }
            }
        }
    }
}
