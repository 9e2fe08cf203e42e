//! The interpreter: runs a checked [`Program`] on `ndarray` inputs with loaded weights.

use std::collections::HashMap;

use ndarray::{Array2, ArrayD, ArrayViewD};
use seqmodel_ir::{Dim, NodeIndex, Op, Program};

use crate::error::Result;
use crate::exec::{self, Prepared, ValueRef, Workspace};
use crate::{Tensor, TensorView, WeightStore};

/// Where a node reads one input: a model input or another node's output port.
#[derive(Debug, Clone, Copy)]
enum Source {
    Input(usize),
    Node(usize, usize),
}

/// One node in execution order, with everything a run needs.
#[derive(Debug, Clone)]
struct Step {
    op: Op,
    layer: String,
    sources: Vec<Source>,
    first_dim: Option<Dim>,
    prepared: Option<Prepared>,
}

/// A loaded model ready to run. Stateful layers keep their states between calls until
/// [`Model::reset_states`]. Buffers are kept between calls, so a run with the shapes of the
/// previous one allocates only its returned arrays.
#[derive(Debug, Clone)]
pub struct Model {
    program: Program,
    steps: Vec<Step>,
    outputs: Vec<Source>,
    states: Vec<Option<Vec<Array2<f32>>>>,
    workspace: Workspace,
}

impl Model {
    /// Checks `weights` against the program (every weight present, right shape, finite) and
    /// repacks them for the kernels.
    pub fn new(program: Program, weights: &WeightStore) -> Result<Self> {
        program.validate()?;
        weights.check(&program)?;
        weights.check_architecture(&program.name, program.fingerprint())?;
        // The interpreter runs the same inference pipeline as the generated code.
        let mut optimised = program.clone();
        seqmodel_ir::passes::for_inference(&mut optimised);
        // Standard layout for `as_slice`.
        let std = weights.standard_layout();
        let order = optimised.topo_order();
        let position: HashMap<NodeIndex, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let source = |n: NodeIndex, port: usize| match optimised.graph[n].op {
            Op::Input { index } => Source::Input(index),
            _ => Source::Node(position[&n], port),
        };
        let mut steps = Vec::with_capacity(order.len());
        for &n in &order {
            let node = &optimised.graph[n];
            let prepared = match &node.weights {
                Some(prefix) => exec::prepare(&node.op, &std, prefix)?,
                None => None,
            };
            steps.push(Step {
                op: node.op.clone(),
                layer: node.layer.clone(),
                sources: optimised.node_inputs(n).into_iter().map(|p| source(p.node, p.port)).collect(),
                first_dim: optimised.types[&n].first().and_then(|t| t.dims.first()).copied(),
                prepared,
            });
        }
        let outputs = optimised.outputs.iter().map(|p| source(p.node, p.port)).collect();
        let states = vec![None; steps.len()];
        let workspace = Workspace::new(steps.len());
        Ok(Model { program, steps, outputs, states, workspace })
    }

    /// The program this model runs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Forgets the states of every stateful layer (the next call starts from zeros).
    pub fn reset_states(&mut self) {
        self.states.iter_mut().for_each(|s| *s = None);
    }

    /// Runs the model on one batch. Inputs are batch-first, in declaration order; outputs are
    /// in declaration order.
    pub fn predict(&mut self, inputs: &[Tensor]) -> Result<Vec<ArrayD<f32>>> {
        self.predict_with_dims(inputs, &[])
    }

    /// Like [`Model::predict`], binding dimension symbols that no input determines (e.g. the
    /// `T` of `Decoder<T>(z: [16])` run on its own).
    pub fn predict_with_dims(
        &mut self,
        inputs: &[Tensor],
        dims: &[(&str, usize)],
    ) -> Result<Vec<ArrayD<f32>>> {
        let views: Vec<TensorView<'_>> = inputs.iter().map(Tensor::view).collect();
        self.run_with_dims(&views, dims)?;
        Ok(self.outputs.iter().map(|s| value(&views, &self.workspace, *s).to_f32()).collect())
    }

    /// Runs the model, leaving the outputs in the model's buffers; [`Model::output`] reads
    /// them. Unlike [`Model::predict`], it copies nothing out.
    pub fn run_with_dims(&mut self, inputs: &[TensorView<'_>], dims: &[(&str, usize)]) -> Result<()> {
        let mut bindings: Vec<Option<usize>> = vec![None; self.program.symbols.len()];
        for (name, v) in dims {
            if let Some(i) = self.program.symbols.iter().position(|s| s == name) {
                bindings[i] = Some(*v);
            }
        }
        check_inputs(&self.program, inputs, &mut bindings)?;
        let Workspace { values, scratch } = &mut self.workspace;
        for (i, step) in self.steps.iter().enumerate() {
            if matches!(step.op, Op::Input { .. }) {
                continue;
            }
            let (done, rest) = values.split_at_mut(i);
            let ins = gather(&step.sources, inputs, done);
            let out_time = exec::out_time(&step.op, step.first_dim, &bindings);
            exec::node_into(
                &step.op,
                &step.layer,
                step.prepared.as_ref(),
                &ins,
                &mut self.states[i],
                out_time,
                scratch,
                &mut rest[0],
            )?;
        }
        Ok(())
    }

    /// Output `k` of the last [`Model::run_with_dims`] (a float view into the model's buffers).
    ///
    /// # Errors
    /// If the output is a model input passed through unchanged (read it from the input), or
    /// holds integer ids.
    pub fn output(&self, k: usize) -> Result<ArrayViewD<'_, f32>> {
        match self.outputs.get(k) {
            Some(Source::Node(n, p)) => self.workspace.values[*n][*p].view().f32(),
            _ => Err(crate::RuntimeError::Shape(format!("output {k} is not computed by a layer"))),
        }
    }
}

fn gather<'a>(
    sources: &[Source],
    inputs: &'a [TensorView<'_>],
    done: &'a [Vec<exec::Value>],
) -> Vec<ValueRef<'a>> {
    sources
        .iter()
        .map(|s| match *s {
            Source::Input(k) => ValueRef::input(inputs[k].reborrow()),
            Source::Node(n, p) => done[n][p].view(),
        })
        .collect()
}

fn value<'a>(inputs: &'a [TensorView<'_>], ws: &'a Workspace, s: Source) -> ValueRef<'a> {
    match s {
        Source::Input(k) => ValueRef::input(inputs[k].reborrow()),
        Source::Node(n, p) => ws.values[n][p].view(),
    }
}

/// Checks inputs against the program's declared types, binds dimension symbols, and returns
/// the batch size.
pub(crate) fn check_inputs(
    p: &Program,
    inputs: &[TensorView<'_>],
    bindings: &mut [Option<usize>],
) -> Result<usize> {
    check_inputs_in(p, inputs, bindings, &mut CheckRoom::default())
}

/// Room for [`check_inputs`]'s lists, kept between calls by a trainer (whose warm step
/// allocates nothing).
#[derive(Debug, Default)]
pub(crate) struct CheckRoom {
    sigs: Vec<exec::InputSig<'static>>,
    symbols: Vec<&'static str>,
    views: Vec<TensorView<'static>>,
}

/// [`check_inputs`] with its lists in `room`.
pub(crate) fn check_inputs_in(
    p: &Program,
    inputs: &[TensorView<'_>],
    bindings: &mut [Option<usize>],
    room: &mut CheckRoom,
) -> Result<usize> {
    let mut sigs: Vec<exec::InputSig<'_>> = crate::pool::reused(std::mem::take(&mut room.sigs));
    sigs.extend(p.inputs.iter().map(|i| exec::InputSig {
        name: &i.name,
        dtype: i.ty.dtype,
        dims: &i.ty.dims,
    }));
    let mut symbols: Vec<&str> = crate::pool::reused(std::mem::take(&mut room.symbols));
    symbols.extend(p.symbols.iter().map(String::as_str));
    let checked = exec::bind_inputs(
        &exec::Signature { model: &p.name, inputs: &sigs, symbols: &symbols, batch: p.batch },
        inputs,
        bindings,
    );
    room.sigs = crate::pool::reused(sigs);
    room.symbols = crate::pool::reused(symbols);
    checked
}

/// [`check_inputs_in`] for owned tensors.
pub(crate) fn check_tensors_in(
    p: &Program,
    inputs: &[crate::Tensor],
    bindings: &mut [Option<usize>],
    room: &mut CheckRoom,
) -> Result<usize> {
    let mut views: Vec<TensorView<'_>> = crate::pool::reused(std::mem::take(&mut room.views));
    views.extend(inputs.iter().map(crate::Tensor::view));
    let checked = check_inputs_in(p, &views, bindings, room);
    room.views = crate::pool::reused(views);
    checked
}
