//! Many independent streams of one stateful model: their carried states and buffers, kept
//! apart from the model's weights so that one model (shared by reference, `Send + Sync`)
//! serves any number of stream sets, each stepped as one batch.

use ndarray::{Array2, ArrayD, ArrayViewD, Axis, s};

use crate::error::{Result, RuntimeError};
use crate::exec::{States, Value, Workspace};
use crate::parallel::run_jobs;
use crate::{Tensor, num_threads};

/// The carried states of `len` streams of one generated model, and the buffers that stepping
/// them uses. Stream `i` is row `i` of every state; the model's `step_streams` steps every
/// stream once, as one batch.
///
/// Streams come and go with [`Streams::resize`] (new streams start from zeros, as after
/// Keras's `reset_states`), [`Streams::swap_remove`] and [`Streams::reset`].
///
/// With more than one thread ([`crate::set_num_threads`]) and enough work per step, a step
/// runs the streams as one share of rows per thread, each share with its own states and
/// buffers (split once and kept: the states move between shares only when the share count
/// changes or streams are added, removed or reset).
///
/// The facade crate's documentation (`seqmodel`, "Many streams") has a runnable example.
#[derive(Debug, Clone)]
pub struct Streams {
    model: &'static str,
    /// The model's architecture fingerprint: two models may share a name.
    fingerprint: u64,
    len: usize,
    /// Every stream's states while the streams are stepped as one batch (`shares` empty).
    states: States,
    /// The buffers of a step as one batch; after a split step, the outputs gathered from
    /// the shares.
    workspace: Workspace,
    /// The streams' rows in order, one share per thread, while split (their states live
    /// here then, and `states` is empty).
    shares: Vec<Share>,
}

/// A run of consecutive streams stepped on one thread: their states and buffers.
#[derive(Debug, Clone)]
struct Share {
    rows: usize,
    states: States,
    workspace: Workspace,
}

/// A step is split across threads when its streams times the model's multiply-adds per
/// stream reach this (about 1 ms of one core's work: the hand-off to a helper thread costs
/// some microseconds).
const SPLIT_MIN_MACS: usize = 1 << 21;

/// Each share has at least this many streams.
const MIN_STREAMS_PER_SHARE: usize = 16;

impl Streams {
    /// `len` streams of the model `model` (architecture `fingerprint`) with `nodes` nodes,
    /// every state zero.
    #[doc(hidden)] // made by a generated model's `streams`
    pub fn new(model: &'static str, fingerprint: u64, nodes: usize, len: usize) -> Self {
        Streams {
            model,
            fingerprint,
            len,
            states: vec![None; nodes],
            workspace: Workspace::new(nodes),
            shares: Vec::new(),
        }
    }

    /// How many streams there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many shares of the streams the last step ran in, each on its own thread (1 when
    /// they stepped as one batch on the calling thread).
    pub fn shares(&self) -> usize {
        self.shares.len().max(1)
    }

    /// The name of the model these streams belong to.
    pub fn model(&self) -> &str {
        self.model
    }

    /// Starts stream `i` over: its states become zeros (Keras's `reset_states` for one row).
    ///
    /// # Errors
    /// If there is no stream `i`.
    pub fn reset(&mut self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.join();
        for m in self.states.iter_mut().flatten().flatten() {
            m.row_mut(i).fill(0.0);
        }
        Ok(())
    }

    /// Starts every stream over.
    pub fn reset_all(&mut self) {
        self.join();
        self.states.iter_mut().for_each(|s| *s = None);
    }

    /// Makes `len` streams: the first ones keep their states, new ones start from zeros.
    pub fn resize(&mut self, len: usize) {
        self.join();
        for m in self.states.iter_mut().flatten().flatten() {
            let mut grown = Array2::zeros((len, m.ncols()));
            let kept = len.min(m.nrows());
            grown.slice_mut(s![..kept, ..]).assign(&m.slice(s![..kept, ..]));
            *m = grown;
        }
        self.len = len;
    }

    /// Removes stream `i`, moving the last stream into its place (as `Vec::swap_remove`).
    ///
    /// # Errors
    /// If there is no stream `i`.
    pub fn swap_remove(&mut self, i: usize) -> Result<()> {
        self.check_index(i)?;
        self.join();
        let last = self.len - 1;
        for m in self.states.iter_mut().flatten().flatten() {
            if i != last {
                let moved = m.row(last).to_owned();
                m.row_mut(i).assign(&moved);
            }
        }
        self.resize(last);
        Ok(())
    }

    fn check_index(&self, i: usize) -> Result<()> {
        if i < self.len {
            Ok(())
        } else {
            Err(RuntimeError::Shape(format!(
                "there is no stream {i} of `{}`: there are {} streams",
                self.model, self.len
            )))
        }
    }

    /// Checks that these are streams of `model` and that `rows` inputs are one per stream.
    fn check_step(&self, model: &str, fingerprint: u64, input: &str, rows: usize) -> Result<()> {
        if model != self.model {
            return Err(RuntimeError::Shape(format!(
                "these streams belong to `{}`, not to `{model}`",
                self.model
            )));
        }
        if fingerprint != self.fingerprint {
            return Err(RuntimeError::Shape(format!(
                "these streams belong to another model named `{model}` (another architecture)"
            )));
        }
        if rows != self.len {
            return Err(RuntimeError::InputShape {
                model: model.into(),
                input: input.into(),
                expected: format!("one row per stream ({} streams)", self.len),
                found: format!("{rows} rows"),
            });
        }
        Ok(())
    }

    /// One step of every stream: checks that these are streams of `model` and that `x` has
    /// one row per stream, then runs `forward` on the states, buffers and input rows of the
    /// whole batch, or of each share on its own thread when the step is large enough
    /// (`macs_per_stream`: the model's multiply-adds per stream and step), and gathers the
    /// shares' `outputs` (`(slot, port)` of the workspace's values) in stream order.
    #[doc(hidden)] // called by a generated model's `step_streams`
    #[allow(clippy::too_many_arguments)] // the model's identity, its input, and its step
    pub fn step<F>(
        &mut self,
        model: &str,
        fingerprint: u64,
        input: &str,
        x: ArrayViewD<'_, f32>,
        macs_per_stream: usize,
        outputs: &[(usize, usize)],
        forward: F,
    ) -> Result<()>
    where
        F: Fn(&mut States, &mut Workspace, ArrayViewD<'_, f32>) -> Result<()> + Sync,
    {
        let rows = x.shape().first().copied().unwrap_or(0);
        self.check_step(model, fingerprint, input, rows)?;
        let shares = self.share_count(macs_per_stream);
        if shares <= 1 {
            self.join();
            return forward(&mut self.states, &mut self.workspace, x);
        }
        if self.shares.len() != shares {
            self.join();
            self.split(shares);
        }
        let mut results: Vec<Result<()>> = Vec::new();
        results.resize_with(shares, || Ok(()));
        let forward = &forward;
        let mut start = 0;
        let jobs = self.shares.iter_mut().zip(results.iter_mut()).map(|(share, result)| {
            let rows = x.slice_axis(Axis(0), (start..start + share.rows).into());
            start += share.rows;
            move || *result = forward(&mut share.states, &mut share.workspace, rows)
        });
        run_jobs(shares, jobs);
        results.into_iter().collect::<Result<()>>()?;
        self.gather(outputs)
    }

    /// How many shares a step of these streams runs in: one per thread when the step has
    /// enough work and every share enough streams, else one.
    fn share_count(&self, macs_per_stream: usize) -> usize {
        let threads = num_threads().min(self.len / MIN_STREAMS_PER_SHARE);
        if threads <= 1 || self.len.saturating_mul(macs_per_stream) < SPLIT_MIN_MACS { 1 } else { threads }
    }

    /// Moves the states of the shares back into one batch (stream order), if split.
    fn join(&mut self) {
        if self.shares.is_empty() {
            return;
        }
        let shares = std::mem::take(&mut self.shares);
        for (node, joined) in self.states.iter_mut().enumerate() {
            // A share that has not stepped a node holds no state for it: zeros.
            let Some(widths) = shares.iter().find_map(|s| s.states[node].as_ref()) else {
                *joined = None;
                continue;
            };
            let widths: Vec<usize> = widths.iter().map(Array2::ncols).collect();
            let arrays = widths
                .iter()
                .enumerate()
                .map(|(k, &w)| {
                    let mut all = Array2::zeros((self.len, w));
                    let mut start = 0;
                    for share in &shares {
                        if let Some(m) = share.states[node].as_ref().and_then(|v| v.get(k)) {
                            all.slice_mut(s![start..start + m.nrows(), ..]).assign(m);
                        }
                        start += share.rows;
                    }
                    all
                })
                .collect();
            *joined = Some(arrays);
        }
    }

    /// Splits the batch's states into `shares` runs of consecutive streams (the first ones
    /// one stream longer when they do not divide evenly).
    fn split(&mut self, shares: usize) {
        let (per, extra) = (self.len / shares, self.len % shares);
        let mut start = 0;
        let nodes = self.states.len();
        for i in 0..shares {
            let rows = per + usize::from(i < extra);
            let states = self
                .states
                .iter()
                .map(|node| {
                    node.as_ref()
                        .map(|v| v.iter().map(|m| m.slice(s![start..start + rows, ..]).to_owned()).collect())
                })
                .collect();
            let workspace = Workspace::new(self.workspace.values.len());
            self.shares.push(Share { rows, states, workspace });
            start += rows;
        }
        self.states = vec![None; nodes];
    }

    /// Writes the shares' `outputs` one after another along the batch into the workspace
    /// (into its buffers when they have the shape already).
    fn gather(&mut self, outputs: &[(usize, usize)]) -> Result<()> {
        for &(slot, port) in outputs {
            let parts = self
                .shares
                .iter()
                .map(|s| s.workspace.values.get(slot).and_then(|v| v.get(port)))
                .collect::<Option<Vec<&Value>>>()
                .ok_or_else(|| RuntimeError::Shape(format!("a step wrote no output {slot}:{port}")))?;
            let floats = parts
                .iter()
                .map(|v| v.t.as_f32().map(|a| a.view()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| RuntimeError::Shape("an integer output of a step".into()))?;
            let mut shape = floats[0].shape().to_vec();
            shape[0] = self.len;
            let values = &mut self.workspace.values[slot];
            if values.len() <= port {
                values.resize_with(port + 1, || Value { t: Tensor::F32(ArrayD::zeros(vec![0])), mask: None });
            }
            let out = &mut values[port];
            if out.t.shape() != shape.as_slice() || out.t.as_f32().is_none() {
                out.t = Tensor::F32(ArrayD::zeros(shape));
            }
            let Tensor::F32(all) = &mut out.t else { unreachable!("made a float array above") };
            let mut start = 0;
            for part in &floats {
                let rows = part.shape()[0];
                all.slice_axis_mut(Axis(0), (start..start + rows).into()).assign(part);
                start += rows;
            }
            out.mask = match parts.iter().map(|v| v.mask.as_ref()).collect::<Option<Vec<_>>>() {
                Some(masks) => Some(
                    ndarray::concatenate(Axis(0), &masks.iter().map(|m| m.view()).collect::<Vec<_>>())
                        .map_err(|e| RuntimeError::Shape(format!("the shares' masks: {e}")))?,
                ),
                None => None,
            };
        }
        Ok(())
    }

    /// The buffers of the last step (for the generated code's returned views).
    #[doc(hidden)]
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }
}
