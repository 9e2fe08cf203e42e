//! Many independent streams of one stateful model: their carried states and buffers, kept
//! apart from the model's weights so that one model (shared by reference, `Send + Sync`)
//! serves any number of stream sets, each stepped as one batch.

use ndarray::{Array2, s};

use crate::error::{Result, RuntimeError};
use crate::exec::{States, Workspace};

/// The carried states of `len` streams of one generated model, and the buffers that stepping
/// them uses. Stream `i` is row `i` of every state; the model's `step_streams` steps every
/// stream once, as one batch.
///
/// Streams come and go with [`Streams::resize`] (new streams start from zeros, as after
/// Keras's `reset_states`), [`Streams::swap_remove`] and [`Streams::reset`].
///
/// The facade crate's documentation (`seqmodel`, "Many streams") has a runnable example.
#[derive(Debug, Clone)]
pub struct Streams {
    model: &'static str,
    /// The model's architecture fingerprint: two models may share a name.
    fingerprint: u64,
    len: usize,
    states: States,
    workspace: Workspace,
}

impl Streams {
    /// `len` streams of the model `model` (architecture `fingerprint`) with `nodes` nodes,
    /// every state zero.
    #[doc(hidden)] // made by a generated model's `streams`
    pub fn new(model: &'static str, fingerprint: u64, nodes: usize, len: usize) -> Self {
        Streams { model, fingerprint, len, states: vec![None; nodes], workspace: Workspace::new(nodes) }
    }

    /// How many streams there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
        for m in self.states.iter_mut().flatten().flatten() {
            m.row_mut(i).fill(0.0);
        }
        Ok(())
    }

    /// Starts every stream over.
    pub fn reset_all(&mut self) {
        self.states.iter_mut().for_each(|s| *s = None);
    }

    /// Makes `len` streams: the first ones keep their states, new ones start from zeros.
    pub fn resize(&mut self, len: usize) {
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

    /// Checks that these are streams of `model` and that `rows` inputs are one per stream,
    /// then lends the states and buffers to a step.
    #[doc(hidden)] // called by a generated model's `step_streams`
    pub fn for_step(
        &mut self,
        model: &str,
        fingerprint: u64,
        input: &str,
        rows: usize,
    ) -> Result<(&mut States, &mut Workspace)> {
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
        Ok((&mut self.states, &mut self.workspace))
    }

    /// The buffers of the last step (for the generated code's returned views).
    #[doc(hidden)]
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }
}
