//! The fit loop: validation, early stopping, checkpoints, inference-mode evaluation.

use ndarray::{ArrayD, IxDyn};
use seqmodel_runtime::train::{FitOptions, Loss, Optimizer, Trainer};
use seqmodel_runtime::{Tensor, WeightStore};

fn setup(src: &str) -> Trainer {
    let p = seqmodel_compiler::compile(src).unwrap().main().unwrap().clone();
    let w = WeightStore::random(&p, 3, 0.3);
    Trainer::new(p, w, Loss::MeanSquaredError, Optimizer::adam(0.02)).unwrap()
}

fn series(n: usize) -> (Tensor, Tensor) {
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 6, 1]), |ix| ((ix[0] as f32) * 0.3 + ix[1] as f32 * 0.5).sin());
    let y = ArrayD::from_shape_fn(IxDyn(&[n, 1]), |ix| ((ix[0] as f32) * 0.3 + 3.0).sin());
    (Tensor::F32(x), Tensor::F32(y))
}

#[test]
fn fit_lowers_the_loss_and_reports_validation() {
    let mut t = setup("model M(x: [6, 1]) -> [1] { x -> LSTM(8) -> Dense(1) }");
    let (x, y) = series(40);
    let dir = std::env::temp_dir().join(format!("seqmodel-fit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("best.safetensors");
    let _ = std::fs::remove_file(&ckpt);
    let opts = FitOptions {
        epochs: 40,
        batch_size: 8,
        validation_split: 0.25,
        checkpoint: Some(ckpt.clone()),
        ..FitOptions::default()
    };
    let h =
        t.fit_with(std::slice::from_ref(&x), std::slice::from_ref(&y), &opts, &mut |_, _, _, _| {}).unwrap();
    assert_eq!(h.loss.len(), 40);
    assert_eq!(h.val_loss.len(), 40);
    assert!(h.loss[39] < 0.5 * h.loss[0], "{:?}", h.loss);
    // The checkpoint holds the best weights: re-evaluating them gives the best val_loss.
    let best = h.val_loss.iter().copied().fold(f32::INFINITY, f32::min);
    let saved = WeightStore::load(&ckpt).unwrap();
    let mut t2 =
        Trainer::new(t.program().clone(), saved, Loss::MeanSquaredError, Optimizer::sgd(0.0)).unwrap();
    let xv = match &x {
        Tensor::F32(a) => Tensor::F32(a.slice(ndarray::s![30.., .., ..]).to_owned().into_dyn()),
        _ => unreachable!(),
    };
    let yv = match &y {
        Tensor::F32(a) => Tensor::F32(a.slice(ndarray::s![30.., ..]).to_owned().into_dyn()),
        _ => unreachable!(),
    };
    assert!((t2.evaluate(&[xv], &[yv]).unwrap() - best).abs() < 1e-6);
    // An existing checkpoint is not overwritten.
    assert!(t.fit_with(&[x], &[y], &opts, &mut |_, _, _, _| {}).is_err());
}

#[test]
fn early_stopping_stops() {
    let mut t = setup("model M(x: [6, 1]) -> [1] { x -> LSTM(4) -> Dense(1) }");
    t.optimizer = Optimizer::sgd(0.0);
    let (x, y) = series(16);
    let opts = FitOptions {
        epochs: 50,
        batch_size: 8,
        early_stopping_patience: Some(2),
        shuffle: false,
        ..FitOptions::default()
    };
    let h = t.fit_with(&[x], &[y], &opts, &mut |_, _, _, _| {}).unwrap();
    assert_eq!(h.loss.len(), 3, "a learning rate of 0 never improves: stop after 1 + 2 epochs");
}

#[test]
fn evaluate_is_inference_mode() {
    let mut t = setup("model M(x: [6, 1]) -> [1] { x -> LSTM(4, dropout=0.5) -> Dropout(0.5) -> Dense(1) }");
    let (x, y) = series(8);
    let a = t.evaluate(std::slice::from_ref(&x), std::slice::from_ref(&y)).unwrap();
    let b = t.evaluate(std::slice::from_ref(&x), std::slice::from_ref(&y)).unwrap();
    assert_eq!(a, b, "no dropout in evaluate");
    let m = t.to_model().unwrap().predict(std::slice::from_ref(&x)).unwrap().remove(0);
    let Tensor::F32(yy) = &y else { unreachable!() };
    let mse = (&m - yy).mapv(|v| v * v).mean().unwrap();
    assert!((mse - a).abs() < 1e-5, "evaluate {a} equals the interpreter's loss {mse}");
    assert_ne!(
        t.training_loss(std::slice::from_ref(&x), std::slice::from_ref(&y)).unwrap(),
        a,
        "dropout is active in training"
    );
}

/// Careless training data and hyper-parameters are errors that say what is wrong, before
/// anything trains (they panicked, silently dropped targets or trained to NaN).
#[test]
fn careless_data_and_hyper_parameters_are_errors() {
    let src = "model M(x: [6, 1]) -> [1] { x -> LSTM(4) -> Dense(1) }";
    let mut t = setup(src);
    let (x, y) = series(10);
    let (_, y5) = series(5);
    let (_, y20) = series(20);
    let fit = |t: &mut Trainer, y: &Tensor, opts: &FitOptions| {
        t.fit_with(std::slice::from_ref(&x), std::slice::from_ref(y), opts, &mut |_, _, _, _| {})
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let opts = FitOptions { epochs: 1, batch_size: 4, ..FitOptions::default() };
    assert!(fit(&mut t, &y5, &opts).contains("target 0 has 5 rows, input 0 has 10"));
    assert!(fit(&mut t, &y20, &opts).contains("target 0 has 20 rows"));
    let split = FitOptions { validation_split: 0.5, ..opts.clone() };
    assert!(fit(&mut t, &y5, &split).contains("rows"));
    assert!(fit(&mut t, &y, &FitOptions { epochs: 0, ..opts.clone() }).contains("at least one epoch"));
    let (x0, y0) = series(0);
    let e = t.fit_with(&[x0], &[y0], &opts, &mut |_, _, _, _| {}).unwrap_err().to_string();
    assert!(e.contains("no rows"), "{e}");
    let e = t.train_on_batch(std::slice::from_ref(&x), std::slice::from_ref(&y5)).unwrap_err().to_string();
    assert!(e.contains("5 rows"), "{e}");
    for lr in [f32::NAN, f32::INFINITY, -0.1] {
        let p = seqmodel_compiler::compile(src).unwrap().main().unwrap().clone();
        let w = WeightStore::random(&p, 3, 0.3);
        let e = Trainer::new(p, w, Loss::MeanSquaredError, Optimizer::adam(lr)).unwrap_err().to_string();
        assert!(e.contains("learning_rate"), "{e}");
    }
    // Nothing trained: the weights are where they started.
    assert_eq!(t.weights().get("M/dense/bias"), setup(src).weights().get("M/dense/bias"));
}

/// A loss that stops being finite ends training with an error naming the epoch and the
/// step (Keras's TerminateOnNaN), before that step's update: the weights are the last good
/// ones, every value finite (they trained on to NaN before).
#[test]
fn a_loss_that_diverges_stops_training_with_the_last_good_weights() {
    let src = "model M(x: [6, 1]) -> [1] { x -> LSTM(4) -> Dense(1) }";
    let p = seqmodel_compiler::compile(src).unwrap().main().unwrap().clone();
    let w = WeightStore::random(&p, 3, 0.3);
    let mut t = Trainer::new(p, w, Loss::MeanSquaredError, Optimizer::sgd(1e30)).unwrap();
    let (x, y) = series(8);
    let opts = FitOptions { epochs: 20, batch_size: 4, ..FitOptions::default() };
    let e = t.fit_with(&[x], &[y], &opts, &mut |_, _, _, _| {}).unwrap_err().to_string();
    assert!(e.starts_with("epoch ") && e.contains(", step ") && e.contains("the loss became"), "{e}");
    for key in t.weights().keys() {
        let v = t.weights().get(key).unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{key} holds non-finite values after {e}");
    }
}
