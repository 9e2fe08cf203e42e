//! The runnable benchmark cases: each config × mode × implementation as a closure that does
//! one call (one `predict`, one training step, or the whole 200-call generation loop).

use seqmodel::ndarray::{ArrayD, Ix2, Ix3, IxDyn};
use seqmodel::train::{Loss, Optimizer, Trainer};
use seqmodel::{Model, Tensor, WeightStore};

use crate::config::Config;
use crate::models;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inference (`predict`, or the generation loop).
    Predict,
    /// One training step: forward, backward and an Adam update.
    Train,
}

impl Mode {
    /// `predict` or `train`, as in `peers.py`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Predict => "predict",
            Mode::Train => "train",
        }
    }
}

/// Which seqmodel implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// The code `seqmodel_compiler::build::Builder` generated (what `seqmodel!` emits).
    Generated,
    /// The IR interpreter (`seqmodel::Model`, what `seqc run` uses).
    Interpreter,
    /// The `no_std` code of `seqmodel!(…, no_std)` with its weights compiled in (the
    /// `seqmodel-no-std` crate's gen-stateful; other configs have none).
    NoStd,
}

impl Implementation {
    /// The name in the `peer` column.
    pub fn peer(self) -> &'static str {
        match self {
            Implementation::Generated => "seqmodel",
            Implementation::Interpreter => "seqmodel-interp",
            Implementation::NoStd => "seqmodel-no_std",
        }
    }
}

/// A deterministic pseudo-random stream (SplitMix64), so inputs are the same in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn floats(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut r = Rng(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || r.unit())
}

fn ids(shape: &[usize], vocab: usize, seed: u64) -> ArrayD<i32> {
    let mut r = Rng(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || (r.next() % vocab as u64) as i32)
}

/// The model input of a config (for `gen-stateful`, the first step `[1, 8]`).
pub fn input(c: Config) -> Tensor {
    let (b, t) = c.shape();
    match c {
        Config::StreamLstm => Tensor::F32(floats(&[b, t, 32], 1)),
        Config::AeSeed => Tensor::F32(floats(&[b, t, 8], 1)),
        Config::LmGru => Tensor::I32(ids(&[b, t], 10_000, 1)),
        Config::BigLstm => Tensor::F32(floats(&[b, t, 256], 1)),
        Config::GenStateful | Config::ServeStreams => Tensor::F32(floats(&[b, 8], 1)),
        Config::ConvLstm => Tensor::F32(floats(&[b, t, 16], 1)),
    }
}

/// The `.seq` source of a config's model.
pub fn source(c: Config) -> &'static str {
    match c {
        Config::StreamLstm => include_str!("../models/stream_lstm.seq"),
        Config::AeSeed => include_str!("../models/ae_seed.seq"),
        Config::LmGru => include_str!("../models/lm_gru.seq"),
        Config::BigLstm => include_str!("../models/big_lstm.seq"),
        Config::GenStateful | Config::ServeStreams => include_str!("../models/gen_stateful.seq"),
        Config::ConvLstm => include_str!("../models/conv_lstm.seq"),
    }
}

/// A boxed call, run repeatedly by the timer.
pub type Call = Box<dyn FnMut()>;

fn f32_of(t: &Tensor) -> ArrayD<f32> {
    t.as_f32().expect("float input").clone()
}

/// The interpreter for a config, with the same seeded weights as the generated type.
pub fn interpreter(c: Config, weights: &WeightStore) -> Model {
    let compiled = seqmodel_compiler::compile(source(c)).expect("benchmark models check");
    // The interpreter runs the inference passes itself.
    let program = compiled.main().expect("a main model").clone();
    Model::new(program, weights).expect("weights fit")
}

/// The trainer of a config with its seeded weights, and one batch of inputs and targets.
pub fn trainer(c: Config) -> (Trainer, Vec<Tensor>, Vec<Tensor>) {
    let adam = Optimizer::adam(1e-3);
    let mse = Loss::MeanSquaredError;
    let x = input(c);
    let (b, t) = c.shape();
    match c {
        Config::StreamLstm => {
            let tr = models::StreamLstm::random(7).trainer(mse, adam).expect("trainer");
            (tr, vec![x], vec![Tensor::F32(ArrayD::zeros(IxDyn(&[b, 128])))])
        }
        Config::AeSeed => {
            let tr = models::AeSeed::random(7).trainer(mse, adam).expect("trainer");
            (tr, vec![x.clone()], vec![x])
        }
        Config::LmGru => {
            let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
            let tr = models::LmGru::random(7).trainer(loss, Optimizer::adam(0.009)).expect("trainer");
            (tr, vec![x], vec![Tensor::I32(ids(&[b, t], 10_000, 2))])
        }
        Config::BigLstm => {
            let tr = models::BigLstm::random(7).trainer(mse, adam).expect("trainer");
            (tr, vec![x], vec![Tensor::F32(ArrayD::zeros(IxDyn(&[b, t, 256])))])
        }
        Config::ConvLstm => {
            let tr = models::ConvLstm::random(7).trainer(mse, adam).expect("trainer");
            (tr, vec![x], vec![Tensor::F32(ArrayD::zeros(IxDyn(&[b, 1])))])
        }
        Config::GenStateful | Config::ServeStreams => unreachable!("generation is not trained"),
    }
}

/// The call that measures `(c, mode, imp)`, or `None` where it does not apply (training is
/// one implementation, the tape of `seqmodel::train`, reported as `seqmodel`).
pub fn build(c: Config, mode: Mode, imp: Implementation) -> Option<Call> {
    if mode == Mode::Train {
        if !c.trains() || imp != Implementation::Generated {
            return None;
        }
        let (mut tr, x, y) = trainer(c);
        return Some(Box::new(move || {
            std::hint::black_box(tr.train_on_batch(&x, &y).expect("train step"));
        }));
    }
    let x = input(c);
    Some(match imp {
        Implementation::Generated => generated_predict(c, x),
        // Its own compiled-in weights (the values do not change the work of a step).
        Implementation::NoStd if c == Config::GenStateful => generation_loop(
            c,
            &x,
            seqmodel_no_std::GenStateful::new(),
            |m| m.reset_states(),
            |m, x| *m.step(x).expect("step"),
        ),
        Implementation::NoStd => return None,
        // The interpreter has no streams of its own (a stateful model fixes its batch).
        Implementation::Interpreter if c == Config::ServeStreams => return None,
        Implementation::Interpreter => {
            let weights = match c {
                Config::StreamLstm => models::StreamLstm::random(7).weights().clone(),
                Config::AeSeed => models::AeSeed::random(7).weights().clone(),
                Config::LmGru => models::LmGru::random(7).weights().clone(),
                Config::BigLstm => models::BigLstm::random(7).weights().clone(),
                Config::GenStateful => models::GenStateful::random(7).weights().clone(),
                Config::ConvLstm => models::ConvLstm::random(7).weights().clone(),
                Config::ServeStreams => unreachable!("returned above"),
            };
            let mut m = interpreter(c, &weights);
            if c == Config::GenStateful {
                let x0 = f32_of(&x).insert_axis(seqmodel::ndarray::Axis(1));
                Box::new(move || {
                    m.reset_states();
                    let mut step = Tensor::F32(x0.clone());
                    for _ in 0..c.shape().1 {
                        let y = m.predict(std::slice::from_ref(&step)).expect("step");
                        step = Tensor::F32(y.into_iter().next().expect("one output"));
                    }
                    std::hint::black_box(&step);
                })
            } else {
                let xs = vec![x];
                Box::new(move || {
                    std::hint::black_box(m.predict(&xs).expect("predict"));
                })
            }
        }
    })
}

/// gen-stateful's generation loop on plain arrays: from the config's first input, each step's
/// output is the next step's input, the states reset first.
fn generation_loop<M: 'static>(
    c: Config,
    x: &Tensor,
    mut model: M,
    reset: fn(&mut M),
    step: fn(&mut M, &[f32; 8]) -> [f32; 8],
) -> Call {
    let x0: [f32; 8] = f32_of(x).as_slice().expect("standard layout").try_into().expect("8 features");
    Box::new(move || {
        reset(&mut model);
        let mut x = x0;
        for _ in 0..c.shape().1 {
            x = step(&mut model, &x);
        }
        std::hint::black_box(&x);
    })
}

fn generated_predict(c: Config, x: Tensor) -> Call {
    // One `run` of a generated type on its (float or id) input, of rank `$rank`.
    macro_rules! run {
        ($model:ty, $input:expr, $rank:ty) => {{
            let mut m = <$model>::random(7);
            let x = $input.into_dimensionality::<$rank>().expect("the config's rank");
            Box::new(move || {
                std::hint::black_box(m.run(x.view()).expect("predict"));
            })
        }};
    }
    match c {
        Config::StreamLstm => run!(models::StreamLstm, f32_of(&x), Ix3),
        Config::AeSeed => run!(models::AeSeed, f32_of(&x), Ix3),
        Config::LmGru => {
            let Tensor::I32(ids) = x else { unreachable!("token ids") };
            run!(models::LmGru, ids, Ix2)
        }
        Config::BigLstm => run!(models::BigLstm, f32_of(&x), Ix3),
        Config::ConvLstm => run!(models::ConvLstm, f32_of(&x), Ix3),
        // Batch 1: the plain-array step (`step_one`), the API a generation loop uses.
        Config::GenStateful => generation_loop(
            c,
            &x,
            models::GenStateful::random(7),
            |m| m.reset_states(),
            |m, x| *m.step_one(x).expect("step"),
        ),
        Config::ServeStreams => {
            // One model, read only; the streams hold every state.
            let m = models::GenStateful::random(7);
            let x0 = f32_of(&x).into_dimensionality::<Ix2>().expect("one step per stream");
            let mut streams = m.streams(x0.shape()[0]);
            let mut step = x0.clone();
            Box::new(move || {
                streams.reset_all();
                step.assign(&x0);
                for _ in 0..c.shape().1 {
                    let y = m.step_streams(&mut streams, step.view()).expect("step");
                    step.assign(&y);
                }
                std::hint::black_box(&step);
            })
        }
    }
}
