//! Training: backpropagation through time over the IR, Keras's losses and optimizers, and
//! the `train_on_batch` / `evaluate` / `fit` loop with stateful carry-over.

mod data;
mod graph;
mod loss;
mod optimizer;
mod progress;

use std::collections::HashMap;

use ndarray::{ArrayD, Axis};
use seqmodel_ir::Program;

pub use data::{Element, IntoTensor, IntoTensors};
pub use loss::Loss;
pub use optimizer::{Optimizer, Rule, SparseSums};
pub use progress::{Callback, EpochLogs, Progress};

use crate::error::{Result, RuntimeError};
use crate::{Model, Tensor, WeightStore};

/// A model being trained: its program, weights, loss, optimizer and carried states.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// The program as given (what the weights are tagged with, what `to_model` runs).
    program: Program,
    /// The program after the training passes (what runs).
    rewritten: Program,
    weights: WeightStore,
    /// The loss (applied to every output; the batch loss is their sum, as Keras).
    pub loss: Loss,
    /// The optimizer and its state.
    pub optimizer: Optimizer,
    states: graph::States,
    seed: u64,
    /// Each node's weights packed for the kernels, repacked in place before every pass.
    prepared: std::collections::HashMap<seqmodel_ir::NodeIndex, Option<crate::exec::Prepared>>,
    /// What a step reuses from the last (a warm step allocates nothing).
    workspace: graph::Workspace,
}

/// Options of [`Trainer::fit`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Passes over the data.
    pub epochs: usize,
    /// Rows per step (a last partial batch is used, as Keras does).
    pub batch_size: usize,
    /// Shuffle rows each epoch (seeded).
    pub shuffle: bool,
    /// Stop when the monitored loss (validation loss if there is validation data) has not
    /// improved for this many epochs.
    pub early_stopping_patience: Option<usize>,
    /// Hold out this fraction of the rows (the last ones, before shuffling, as Keras).
    pub validation_split: f32,
    /// Explicit validation inputs and targets (take precedence over the split); see
    /// [`FitOptions::with_validation`] to give arrays.
    pub validation_data: Option<(Vec<Tensor>, Vec<Tensor>)>,
    /// Save the best weights so far here (safetensors); the file must not exist yet.
    pub checkpoint: Option<std::path::PathBuf>,
    /// Keras's `verbose`: 0 silent, 1 a progress bar (on a terminal; elsewhere each epoch's
    /// final line), 2 one line per epoch. Written to standard error by [`Progress`].
    pub verbose: u8,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            early_stopping_patience: None,
            validation_split: 0.0,
            validation_data: None,
            checkpoint: None,
            verbose: 1,
        }
    }
}

impl FitOptions {
    /// These options with explicit validation inputs and targets (arrays or tensors).
    pub fn with_validation<'a>(mut self, x: impl IntoTensors<'a>, y: impl IntoTensors<'a>) -> Self {
        self.validation_data = Some((x.into_tensors().into_owned(), y.into_tensors().into_owned()));
        self
    }
}

/// Per-epoch mean losses (Keras's `History.history`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Mean training loss of each epoch.
    pub loss: Vec<f32>,
    /// Validation loss of each epoch (empty without validation data).
    pub val_loss: Vec<f32>,
}

/// The common row count of every input `x` and target `y` (at least one), or an error
/// naming the arrays that disagree.
fn check_rows(x: &[Tensor], y: &[Tensor], what: &str) -> Result<usize> {
    let row_count = |t: &Tensor| t.shape().first().copied().unwrap_or(0);
    let n = x.first().map_or(0, row_count);
    if n == 0 {
        return Err(RuntimeError::InvalidData(format!("{what} has no rows")));
    }
    for (kind, ts) in [("input", x), ("target", y)] {
        for (i, t) in ts.iter().enumerate() {
            if row_count(t) != n {
                return Err(RuntimeError::InvalidData(format!(
                    "{what}: {kind} {i} has {} rows, input 0 has {n}; every input and target needs one row per sample",
                    row_count(t)
                )));
            }
        }
    }
    Ok(n)
}

fn rows(t: &Tensor, range: std::ops::Range<usize>) -> Tensor {
    match t {
        Tensor::F32(a) => Tensor::F32(a.slice_axis(Axis(0), range.into()).to_owned()),
        Tensor::I32(a) => Tensor::I32(a.slice_axis(Axis(0), range.into()).to_owned()),
    }
}

fn pick_rows(t: &Tensor, idx: &[usize]) -> Tensor {
    match t {
        Tensor::F32(a) => Tensor::F32(a.select(Axis(0), idx)),
        Tensor::I32(a) => Tensor::I32(a.select(Axis(0), idx)),
    }
}

impl Trainer {
    /// Starts training `program` from `weights` (checked like [`Model::new`]). The program
    /// is first rewritten by [`seqmodel_ir::passes::for_training`] (row-wise
    /// `TimeDistributed` layers run on the whole sequence, activations fuse into Dense), which
    /// changes no number and no gradient and saves copies of whole sequences.
    pub fn new(mut program: Program, weights: WeightStore, loss: Loss, optimizer: Optimizer) -> Result<Self> {
        weights.check(&program)?;
        program.validate()?;
        optimizer.validate()?;
        weights.check_architecture(&program.name, program.fingerprint())?;
        // Gradients and the optimizer's moments: about three more copies of the weights.
        let values: usize =
            weights.keys().filter_map(|k| weights.get(k)).map(|a| a.len()).fold(0, usize::saturating_add);
        crate::memory::ensure_allocatable(values.saturating_mul(12), || {
            format!("training model `{}` (gradients and optimizer state for {values} weights)", program.name)
        })?;
        let original = program.clone();
        seqmodel_ir::passes::for_training(&mut program);
        let weights = {
            let mut s = WeightStore::new();
            for k in weights.keys() {
                s.insert(k, weights.get(k).expect("listed").as_standard_layout().to_owned());
            }
            // Saved weights and checkpoints record the architecture they train.
            s.tag(&original);
            s
        };
        let workspace = graph::Workspace::new(graph::Plan::new(&program));
        Ok(Trainer {
            program: original,
            workspace,
            rewritten: program,
            weights,
            loss,
            optimizer,
            states: HashMap::new(),
            seed: 0x5EED_1234_ABCD_0001,
            prepared: HashMap::new(),
        })
    }

    /// The current weights.
    pub fn weights(&self) -> &WeightStore {
        &self.weights
    }

    /// The program being trained.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Forgets the carried states of stateful layers.
    pub fn reset_states(&mut self) {
        self.states.clear();
    }

    /// A model for inference with the current weights.
    pub fn to_model(&self) -> Result<Model> {
        Model::new(self.program.clone(), &self.weights)
    }

    /// The loss on a batch, its weight gradients left in the workspace.
    fn loss_and_grads(&mut self, x: &[Tensor], y: &[Tensor]) -> Result<f32> {
        self.run(x, y, true, true)
    }

    /// Forward (and optionally backward, into `self.workspace.weight_grads`) on one batch.
    fn run(&mut self, x: &[Tensor], y: &[Tensor], training: bool, grads: bool) -> Result<f32> {
        self.optimizer.validate()?;
        check_rows(x, y, "the batch")?;
        // Small lists on the stack: a warm training step allocates nothing.
        let mut bindings = [None; 8];
        let mut bindings_vec;
        let bindings: &mut [Option<usize>] = match self.rewritten.symbols.len() {
            n if n <= bindings.len() => &mut bindings[..n],
            n => {
                bindings_vec = vec![None; n];
                &mut bindings_vec
            }
        };
        crate::interpreter::check_tensors_in(&self.rewritten, x, bindings, &mut self.workspace.check)?;
        if y.len() != self.rewritten.outputs.len() {
            return Err(RuntimeError::Shape(format!(
                "{} target arrays given, the model has {} outputs",
                y.len(),
                self.rewritten.outputs.len()
            )));
        }
        let ws = &mut self.workspace;
        ws.pass.recycle();
        let done = graph::forward(
            &self.rewritten,
            ws,
            &self.weights,
            x,
            bindings,
            &mut self.states,
            &mut self.seed,
            training,
            &mut self.prepared,
        );
        if let Err(e) = done {
            ws.pass.recycle();
            return Err(e);
        }
        let pass = &ws.pass;
        let mut total = pass.penalty;
        let mut out_grads: [Option<ArrayD<f32>>; 4] = Default::default();
        let mut more_grads = Vec::new();
        for (i, (o, t)) in self.rewritten.outputs.iter().zip(y).enumerate() {
            let pred = pass.vals[&o.node][o.port]
                .t
                .as_f32()
                .ok_or_else(|| RuntimeError::Shape("integer output".into()))?;
            let (l, g) = self.loss.value_and_grad(pred, t)?;
            total += l;
            match out_grads.get_mut(i) {
                Some(slot) => *slot = Some(g),
                None => more_grads.push(g),
            }
        }
        let out_grads = out_grads.into_iter().flatten().chain(more_grads);
        if !grads {
            out_grads.for_each(crate::pool::recycle_array);
            ws.pass.recycle();
            return Ok(total);
        }
        let abs_sums = self.optimizer.needs_abs_sums();
        let g = graph::backward(&self.rewritten, ws, &self.weights, out_grads, abs_sums);
        ws.pass.recycle();
        g.map(|()| total)
    }

    /// One optimizer step on one batch; returns the batch loss before the update (Keras's
    /// `train_on_batch`). Stateful layers carry their final states to the next call.
    pub fn train_on_batch<'a>(&mut self, x: impl IntoTensors<'a>, y: impl IntoTensors<'a>) -> Result<f32> {
        self.step(&x.into_tensors(), &y.into_tensors())
    }

    fn step(&mut self, x: &[Tensor], y: &[Tensor]) -> Result<f32> {
        let loss = self.loss_and_grads(x, y)?;
        if !loss.is_finite() {
            return Err(RuntimeError::InvalidData(format!(
                "the loss became {loss}; lower the learning rate?"
            )));
        }
        let g = &mut self.workspace.weight_grads;
        // The sparse sums move into the optimizer's view and back (no copy).
        let mut sparse =
            SparseSums { squares: std::mem::take(&mut g.squares.map), abs: std::mem::take(&mut g.abs.map) };
        self.optimizer.apply_sparse_aware(&mut self.weights, &mut g.grads.map, &sparse);
        g.squares.map = std::mem::take(&mut sparse.squares);
        g.abs.map = std::mem::take(&mut sparse.abs);
        for (key, value) in &g.updates.map {
            match self.weights.get_mut(key) {
                Some(w) if w.shape() == value.shape() => w.assign(value),
                _ => self.weights.insert(key.clone(), value.clone()),
            }
        }
        g.updates.clear();
        Ok(loss)
    }

    /// The loss on a batch in inference mode (no dropout), updating nothing but the states
    /// of stateful layers (as Keras's `evaluate`).
    pub fn evaluate<'a>(&mut self, x: impl IntoTensors<'a>, y: impl IntoTensors<'a>) -> Result<f32> {
        self.run(&x.into_tensors(), &y.into_tensors(), false, false)
    }

    /// The loss on a batch in training mode (dropout active), without an update.
    pub fn training_loss<'a>(&mut self, x: impl IntoTensors<'a>, y: impl IntoTensors<'a>) -> Result<f32> {
        self.run(&x.into_tensors(), &y.into_tensors(), true, false)
    }

    /// The gradients of the loss on a batch with respect to every weight (for checks).
    pub fn gradients<'a>(
        &mut self,
        x: impl IntoTensors<'a>,
        y: impl IntoTensors<'a>,
    ) -> Result<(f32, HashMap<String, ArrayD<f32>>)> {
        let loss = self.loss_and_grads(&x.into_tensors(), &y.into_tensors())?;
        Ok((loss, std::mem::take(&mut self.workspace.weight_grads.grads.map)))
    }

    /// Sets the seed of the dropout masks (the same seed gives the same masks).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed.max(1);
    }

    /// Replaces one weight (for gradient checks).
    pub fn set_weight(&mut self, key: &str, value: ArrayD<f32>) {
        self.weights.insert(key, value);
    }

    /// Keras's `fit`: epochs of mini-batches, optional validation, early stopping and a
    /// best-weights checkpoint, with Keras's progress display at `opts.verbose`.
    ///
    /// `x` and `y` are one array per model input and output (ndarrays, owned or views, a
    /// tuple for several; see [`IntoTensors`]).
    pub fn fit<'a>(
        &mut self,
        x: impl IntoTensors<'a>,
        y: impl IntoTensors<'a>,
        opts: &FitOptions,
    ) -> Result<History> {
        self.fit_with(x, y, opts, &mut Progress::new(opts.verbose))
    }

    /// [`Trainer::fit`] reporting to `callback` instead of the display (a closure
    /// `|epoch, step, steps, loss|` is called after every step).
    pub fn fit_with<'a>(
        &mut self,
        x: impl IntoTensors<'a>,
        y: impl IntoTensors<'a>,
        opts: &FitOptions,
        callback: &mut impl Callback,
    ) -> Result<History> {
        self.fit_tensors(&x.into_tensors(), &y.into_tensors(), opts, callback)
    }

    fn fit_tensors(
        &mut self,
        x: &[Tensor],
        y: &[Tensor],
        opts: &FitOptions,
        callback: &mut impl Callback,
    ) -> Result<History> {
        if let Some(p) = opts.checkpoint.as_ref().filter(|p| p.exists()) {
            return Err(RuntimeError::weight_file(format!(
                "checkpoint {} exists; refusing to overwrite it",
                p.display()
            )));
        }
        if opts.epochs == 0 || opts.batch_size == 0 {
            return Err(RuntimeError::InvalidData(format!(
                "fit needs at least one epoch and one row per batch (epochs = {}, batch_size = {})",
                opts.epochs, opts.batch_size
            )));
        }
        let total = check_rows(x, y, "the training data")?;
        if let Some((vx, vy)) = &opts.validation_data {
            check_rows(vx, vy, "the validation data")?;
        }
        let (x, y, val) = match (&opts.validation_data, opts.validation_split) {
            (Some((vx, vy)), _) => (x.to_vec(), y.to_vec(), Some((vx.clone(), vy.clone()))),
            (None, s) if s > 0.0 => {
                if !(0.0..1.0).contains(&s) {
                    return Err(RuntimeError::InvalidData(format!("validation_split {s} is not in [0, 1)")));
                }
                let n_train = total - ((total as f32 * s) as usize).min(total);
                if n_train == 0 || n_train == total {
                    return Err(RuntimeError::InvalidData(format!(
                        "validation_split {s} of {total} rows leaves {n_train} to train on and {} to validate",
                        total - n_train
                    )));
                }
                let split = |ts: &[Tensor], r: std::ops::Range<usize>| {
                    ts.iter().map(|t| rows(t, r.clone())).collect::<Vec<_>>()
                };
                (
                    split(x, 0..n_train),
                    split(y, 0..n_train),
                    Some((split(x, n_train..total), split(y, n_train..total))),
                )
            }
            _ => (x.to_vec(), y.to_vec(), None),
        };
        let n = x.first().map_or(0, |t| t.shape()[0]);
        let bs = opts.batch_size.max(1);
        let steps = n.div_ceil(bs);
        let mut history = History::default();
        let mut best = f32::INFINITY;
        let mut since_best = 0;
        let mut order: Vec<usize> = (0..n).collect();
        for epoch in 0..opts.epochs {
            if opts.shuffle {
                for i in (1..n).rev() {
                    self.seed ^= self.seed << 13;
                    self.seed ^= self.seed >> 7;
                    self.seed ^= self.seed << 17;
                    order.swap(i, (self.seed % (i as u64 + 1)) as usize);
                }
            }
            let started = std::time::Instant::now();
            callback.on_epoch_begin(epoch, opts.epochs, steps);
            let mut sum = 0.0;
            for s in 0..steps {
                let r = s * bs..((s + 1) * bs).min(n);
                let (bx, by): (Vec<Tensor>, Vec<Tensor>) = if opts.shuffle {
                    let idx = &order[r];
                    (
                        x.iter().map(|t| pick_rows(t, idx)).collect(),
                        y.iter().map(|t| pick_rows(t, idx)).collect(),
                    )
                } else {
                    (
                        x.iter().map(|t| rows(t, r.clone())).collect(),
                        y.iter().map(|t| rows(t, r.clone())).collect(),
                    )
                };
                // A non-finite loss stops training here, before its update (Keras's
                // TerminateOnNaN): the weights are the last good ones.
                let l = self.step(&bx, &by).map_err(|e| match e {
                    RuntimeError::InvalidData(m) => {
                        RuntimeError::InvalidData(format!("epoch {}, step {}: {m}", epoch + 1, s + 1))
                    }
                    other => other,
                })?;
                sum += l;
                callback.on_batch_end(epoch, s, steps, l);
            }
            let mean = sum / steps.max(1) as f32;
            history.loss.push(mean);
            let val_loss = match &val {
                Some((vx, vy)) => Some(self.evaluate(vx, vy)?),
                None => None,
            };
            history.val_loss.extend(val_loss);
            callback
                .on_epoch_end(epoch, &EpochLogs { loss: mean, val_loss, steps, elapsed: started.elapsed() });
            let monitored = val_loss.unwrap_or(mean);
            if monitored < best {
                best = monitored;
                since_best = 0;
                if let Some(p) = &opts.checkpoint {
                    self.weights.save(p, true)?;
                }
            } else {
                since_best += 1;
                if opts.early_stopping_patience.is_some_and(|p| since_best >= p) {
                    break;
                }
            }
        }
        Ok(history)
    }
}
