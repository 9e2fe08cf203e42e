//! The interpreter: runs a checked [`Program`] on `ndarray` inputs with loaded weights.

use std::collections::HashMap;

use ndarray::{Array2, ArrayD};
use seqmodel_ir::{NodeIndex, Op, Program};

use crate::error::Result;
use crate::exec::{self, Prepared, Value};
use crate::{Tensor, WeightStore};

/// A loaded model ready to run. Stateful layers keep their states between calls until
/// [`Model::reset_states`].
#[derive(Debug, Clone)]
pub struct Model {
    program: Program,
    prepared: HashMap<NodeIndex, Prepared>,
    states: HashMap<NodeIndex, Option<Vec<Array2<f32>>>>,
}

impl Model {
    /// Checks `weights` against the program (every weight present, right shape, finite) and
    /// repacks them for the kernels.
    pub fn new(program: Program, weights: &WeightStore) -> Result<Self> {
        weights.check(&program)?;
        // Standard layout for `as_slice`.
        let mut std = WeightStore::new();
        for k in weights.keys() {
            std.insert(k, weights.get(k).expect("key listed").as_standard_layout().to_owned());
        }
        let mut prepared = HashMap::new();
        for n in program.topo_order() {
            let node = &program.graph[n];
            let Some(prefix) = &node.weights else { continue };
            if let Some(p) = exec::prepare(&node.op, &std, prefix)? {
                prepared.insert(n, p);
            }
        }
        Ok(Model { program, prepared, states: HashMap::new() })
    }

    /// The program this model runs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Forgets the states of every stateful layer (the next call starts from zeros).
    pub fn reset_states(&mut self) {
        self.states.clear();
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
        let mut bindings: Vec<Option<usize>> = vec![None; self.program.symbols.len()];
        for (name, v) in dims {
            if let Some(i) = self.program.symbols.iter().position(|s| s == name) {
                bindings[i] = Some(*v);
            }
        }
        let batch = check_inputs(&self.program, inputs, &mut bindings)?;
        let order = self.program.topo_order();
        let mut values: HashMap<NodeIndex, Vec<Value>> = HashMap::new();
        for n in order {
            let ins: Vec<Value> =
                self.program.node_inputs(n).into_iter().map(|p| values[&p.node][p.port].clone()).collect();
            let node = &self.program.graph[n];
            let out = match &node.op {
                Op::Input { index } => vec![Value::input(inputs[*index].clone())],
                op => {
                    let first = self.program.types[&n].first().and_then(|t| t.dims.first()).copied();
                    let out_time = exec::out_time(op, first, &bindings);
                    let state = self.states.entry(n).or_default();
                    exec::node(op, &node.layer, self.prepared.get(&n), ins, state, out_time, batch)?
                }
            };
            values.insert(n, out);
        }
        self.program
            .outputs
            .iter()
            .map(|p| match &values[&p.node][p.port].t {
                Tensor::F32(a) => Ok(a.clone()),
                Tensor::I32(a) => Ok(a.mapv(|v| v as f32)),
            })
            .collect()
    }
}

/// Checks inputs against the program's declared types, binds dimension symbols, and returns
/// the batch size.
pub(crate) fn check_inputs(p: &Program, inputs: &[Tensor], bindings: &mut [Option<usize>]) -> Result<usize> {
    let sigs: Vec<exec::InputSig<'_>> = p
        .inputs
        .iter()
        .map(|i| exec::InputSig { name: &i.name, dtype: i.ty.dtype, dims: &i.ty.dims })
        .collect();
    let symbols: Vec<&str> = p.symbols.iter().map(String::as_str).collect();
    exec::bind_inputs(
        &exec::Signature { model: &p.name, inputs: &sigs, symbols: &symbols, batch: p.batch },
        inputs,
        bindings,
    )
}
