//! The interpreter: runs a checked [`Program`] on `ndarray` inputs with loaded weights.

use std::collections::HashMap;

use ndarray::{Array2, Array3, ArrayD, Axis, Ix2, Ix3, IxDyn};
use seqmodel_ir::{DType, Dim, MergeMode, NodeIndex, Op, Program, RnnAttrs};

use crate::error::{Result, RuntimeError};
use crate::kernels::activation;
use crate::ops::{basic, rnn, time};
use crate::{Tensor, WeightStore};

/// Per-node weights in the kernels' layout, prepared once at load time.
#[derive(Debug, Clone)]
enum Prepared {
    Dense { kernel: Vec<f32>, bias: Option<Vec<f32>> },
    Rnn(rnn::RnnWeights),
    Bidirectional(rnn::RnnWeights, rnn::RnnWeights),
    Embedding(Array2<f32>),
}

/// A value flowing along an edge: a tensor and its optional step mask `[B, T]`.
#[derive(Debug, Clone)]
struct Val {
    t: Tensor,
    mask: Option<Array2<bool>>,
}

/// A loaded model ready to run. Stateful layers keep their states between calls until
/// [`Model::reset_states`].
#[derive(Debug, Clone)]
pub struct Model {
    program: Program,
    prepared: HashMap<NodeIndex, Prepared>,
    states: HashMap<NodeIndex, Vec<Array2<f32>>>,
}

fn weight<'a>(w: &'a WeightStore, key: &str) -> &'a [f32] {
    w.get(key).and_then(|a| a.as_slice()).expect("weights were checked")
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
        let w = &std;
        let mut prepared = HashMap::new();
        for n in program.topo_order() {
            let node = &program.graph[n];
            let Some(prefix) = &node.weights else { continue };
            let key = |v: &str| format!("{prefix}/{v}");
            let p = match &node.op {
                Op::Dense { use_bias, .. } => Prepared::Dense {
                    kernel: weight(w, &key("kernel")).to_vec(),
                    bias: use_bias.then(|| weight(w, &key("bias")).to_vec()),
                },
                Op::Rnn(a) => Prepared::Rnn(pack(a, w, prefix)),
                Op::Bidirectional { forward, backward, .. } => Prepared::Bidirectional(
                    pack(forward, w, &format!("{prefix}/forward")),
                    pack(backward, w, &format!("{prefix}/backward")),
                ),
                Op::Embedding { .. } => Prepared::Embedding(
                    w.get(&key("embeddings"))
                        .expect("checked")
                        .clone()
                        .into_dimensionality::<Ix2>()
                        .map_err(|e| RuntimeError::WeightFile(e.to_string()))?,
                ),
                _ => continue,
            };
            prepared.insert(n, p);
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
        let mut values: HashMap<NodeIndex, Vec<Val>> = HashMap::new();
        for n in order {
            let ins: Vec<Val> =
                self.program.node_inputs(n).into_iter().map(|p| values[&p.node][p.port].clone()).collect();
            let out = self.eval(n, ins, inputs, &bindings, batch)?;
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

    fn eval(
        &mut self,
        n: NodeIndex,
        ins: Vec<Val>,
        inputs: &[Tensor],
        bindings: &[Option<usize>],
        batch: usize,
    ) -> Result<Vec<Val>> {
        let node = &self.program.graph[n];
        let f32_in = |i: usize| -> Result<&ArrayD<f32>> {
            ins[i]
                .t
                .as_f32()
                .ok_or_else(|| RuntimeError::Shape(format!("layer `{}` got integer data", node.layer)))
        };
        let plain = |t: ArrayD<f32>, mask: Option<Array2<bool>>| Ok(vec![Val { t: Tensor::F32(t), mask }]);
        match &node.op {
            Op::Input { index } => Ok(vec![Val { t: inputs[*index].clone(), mask: None }]),
            Op::Dense { units, activation, .. } => {
                let Some(Prepared::Dense { kernel, bias }) = self.prepared.get(&n) else {
                    unreachable!("prepared at load")
                };
                plain(
                    basic::dense(f32_in(0)?, kernel, bias.as_deref(), *units, *activation),
                    ins[0].mask.clone(),
                )
            }
            Op::Activation(a) => {
                let mut x = f32_in(0)?.as_standard_layout().to_owned();
                let width = *x.shape().last().unwrap_or(&1);
                activation::apply(*a, x.as_slice_mut().expect("standard layout"), width);
                plain(x, ins[0].mask.clone())
            }
            Op::Dropout { .. } => Ok(vec![ins[0].clone()]),
            Op::Masking { mask_value } => {
                let (x, mask) = basic::masking(f32_in(0)?, *mask_value);
                plain(x, Some(mask))
            }
            Op::Embedding { mask_zero, .. } => {
                let Tensor::I32(ids) = &ins[0].t else {
                    return Err(RuntimeError::Shape(format!("Embedding `{}` needs integer ids", node.layer)));
                };
                let Some(Prepared::Embedding(table)) = self.prepared.get(&n) else {
                    unreachable!("prepared at load")
                };
                let out = basic::embedding(ids, table)?;
                let mask = (*mask_zero && ids.ndim() == 2)
                    .then(|| ids.map(|&v| v != 0).into_dimensionality::<Ix2>().expect("rank 2"));
                plain(out, mask)
            }
            Op::Rnn(a) => {
                let a = *a;
                let x = to3(f32_in(0)?)?;
                let initial = if ins.len() > 1 {
                    Some(
                        ins[1..]
                            .iter()
                            .map(|v| {
                                v.t.as_f32()
                                    .cloned()
                                    .map(to2)
                                    .unwrap_or_else(|| Ok(Array2::zeros((batch, a.units))))
                            })
                            .collect::<Result<Vec<_>>>()?,
                    )
                } else if a.stateful {
                    self.states.get(&n).cloned()
                } else {
                    None
                };
                let Some(Prepared::Rnn(w)) = self.prepared.get(&n) else { unreachable!("prepared at load") };
                let mask = ins[0].mask.clone();
                let out = rnn::forward(&a, w, x.view(), mask.as_ref().map(|m| m.view()), initial, false);
                if a.stateful {
                    self.states.insert(n, out.states.clone());
                }
                Ok(rnn_values(&a, out, mask))
            }
            Op::Bidirectional { forward, backward, merge } => {
                let (fa, ba, merge) = (*forward, *backward, *merge);
                let x = to3(f32_in(0)?)?;
                let mask = ins[0].mask.clone();
                let saved = if fa.stateful { self.states.get(&n).cloned() } else { None };
                let (fi, bi) = match saved {
                    Some(s) => {
                        let k = fa.cell.states();
                        (Some(s[..k].to_vec()), Some(s[k..].to_vec()))
                    }
                    None => (None, None),
                };
                let Some(Prepared::Bidirectional(fw, bw)) = self.prepared.get(&n) else {
                    unreachable!("prepared at load")
                };
                let zero = mask.is_some();
                let fo = rnn::forward(&fa, fw, x.view(), mask.as_ref().map(|m| m.view()), fi, zero);
                let bo = rnn::forward(&ba, bw, x.view(), mask.as_ref().map(|m| m.view()), bi, zero);
                if fa.stateful {
                    let mut s = fo.states.clone();
                    s.extend(bo.states.clone());
                    self.states.insert(n, s);
                }
                let (f_main, b_main) = if fa.return_sequences {
                    let mut b_seq = bo.sequence.clone().expect("sequences requested");
                    b_seq.invert_axis(Axis(1));
                    (fo.sequence.clone().expect("sequences requested").into_dyn(), b_seq.into_dyn())
                } else {
                    (fo.last.clone().into_dyn(), bo.last.clone().into_dyn())
                };
                let out_mask = if fa.return_sequences { mask } else { None };
                let mut vals = match merge {
                    MergeMode::None => vec![
                        Val { t: Tensor::F32(f_main), mask: out_mask.clone() },
                        Val { t: Tensor::F32(b_main), mask: out_mask },
                    ],
                    m => {
                        let merged = match m {
                            MergeMode::Concat => {
                                ndarray::concatenate(Axis(f_main.ndim() - 1), &[f_main.view(), b_main.view()])
                                    .expect("same shapes")
                            }
                            MergeMode::Sum => &f_main + &b_main,
                            MergeMode::Mul => &f_main * &b_main,
                            MergeMode::Ave => (&f_main + &b_main) * 0.5,
                            MergeMode::None => unreachable!(),
                        };
                        vec![Val { t: Tensor::F32(merged), mask: out_mask }]
                    }
                };
                if fa.return_state {
                    for s in fo.states.into_iter().chain(bo.states) {
                        vals.push(Val { t: Tensor::F32(s.into_dyn()), mask: None });
                    }
                }
                Ok(vals)
            }
            Op::RepeatVector => {
                let ty = &self.program.types[&n][0];
                let count = ty.dims[0].resolve(bindings).ok_or_else(|| {
                    RuntimeError::Shape(format!("RepeatVector `{}`: its count {} is not determined by the inputs; pass it as a dimension", node.layer, ty.dims[0].display(&self.program.symbols)))
                })?;
                plain(time::repeat(f32_in(0)?, count), None)
            }
            Op::TimeSlice { start, end } => {
                let expected = self.program.types[&n][0].dims[0].resolve(bindings);
                plain(time::slice(f32_in(0)?, *start, *end, expected)?, None)
            }
            Op::TimeStep { index } => plain(time::step(f32_in(0)?, *index)?, None),
            Op::ZeroPad { left, right } => plain(time::pad(f32_in(0)?, *left, *right), None),
            Op::Merge(kind) => {
                let xs: Vec<&ArrayD<f32>> = (0..ins.len()).map(&f32_in).collect::<Result<_>>()?;
                let masks: Vec<&Array2<bool>> = ins.iter().filter_map(|v| v.mask.as_ref()).collect();
                let mask =
                    (!masks.is_empty() && masks.iter().all(|m| m.dim() == masks[0].dim())).then(|| {
                        let mut m = masks[0].clone();
                        for o in &masks[1..] {
                            m.zip_mut_with(o, |a, b| *a = *a && *b);
                        }
                        m
                    });
                plain(basic::merge(*kind, &xs)?, mask)
            }
            Op::FoldTime => {
                let fold = |shape: &[usize]| {
                    let mut s = vec![shape[0] * shape[1]];
                    s.extend_from_slice(&shape[2..]);
                    s
                };
                let t = match &ins[0].t {
                    Tensor::F32(a) => Tensor::F32(
                        a.as_standard_layout()
                            .to_owned()
                            .into_shape_with_order(IxDyn(&fold(a.shape())))
                            .expect("fold"),
                    ),
                    Tensor::I32(a) => Tensor::I32(
                        a.as_standard_layout()
                            .to_owned()
                            .into_shape_with_order(IxDyn(&fold(a.shape())))
                            .expect("fold"),
                    ),
                };
                Ok(vec![Val { t, mask: None }])
            }
            Op::UnfoldTime => {
                let outer = ins[1].t.shape();
                let (b, t) = (outer[0], outer[1]);
                let inner = f32_in(0)?;
                let mut s = vec![b, t];
                s.extend_from_slice(&inner.shape()[1..]);
                let out =
                    inner.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&s)).expect("unfold");
                plain(out, ins[1].mask.clone())
            }
        }
    }
}

/// Checks inputs against the program's declared types, binds dimension symbols, and returns
/// the batch size.
pub(crate) fn check_inputs(p: &Program, inputs: &[Tensor], bindings: &mut [Option<usize>]) -> Result<usize> {
    if inputs.len() != p.inputs.len() {
        return Err(RuntimeError::InputCount {
            model: p.name.clone(),
            expected: p.inputs.len(),
            found: inputs.len(),
        });
    }
    let mut batch = p.batch;
    for (spec, x) in p.inputs.iter().zip(inputs) {
        let expected = || format!("{} {}", spec.ty.display_keras(&p.symbols, p.batch), spec.ty.dtype);
        let found = || format!("{:?} {}", x.shape(), x.dtype_name());
        let bad = || RuntimeError::InputShape {
            model: p.name.clone(),
            input: spec.name.clone(),
            expected: expected(),
            found: found(),
        };
        let dtype_ok =
            matches!((spec.ty.dtype, x), (DType::F32, Tensor::F32(_)) | (DType::I32, Tensor::I32(_)));
        if !dtype_ok || x.shape().len() != spec.ty.dims.len() + 1 {
            return Err(bad());
        }
        let b = x.shape()[0];
        match batch {
            Some(want) if want != b => {
                return Err(RuntimeError::InputShape {
                    model: p.name.clone(),
                    input: spec.name.clone(),
                    expected: format!(
                        "{} (batch size {want}{})",
                        expected(),
                        if p.batch.is_some() { ", fixed by the model" } else { ", as the other inputs" }
                    ),
                    found: found(),
                });
            }
            _ => batch = Some(b),
        }
        for (d, &got) in spec.ty.dims.iter().zip(&x.shape()[1..]) {
            match *d {
                Dim::Fixed(n) if n != got => return Err(bad()),
                Dim::Fixed(_) => {}
                Dim::Sym { id, offset } => {
                    let v = got as i64 - offset;
                    if v < 0 {
                        return Err(bad());
                    }
                    match bindings[id] {
                        Some(prev) if prev as i64 != v => {
                            return Err(RuntimeError::InputShape {
                                model: p.name.clone(),
                                input: spec.name.clone(),
                                expected: format!(
                                    "{} with {} = {prev} as in an earlier input",
                                    expected(),
                                    p.symbols[id]
                                ),
                                found: found(),
                            });
                        }
                        _ => bindings[id] = Some(v as usize),
                    }
                }
            }
        }
        if let Some(pos) = x.as_f32().and_then(|a| a.iter().position(|v| !v.is_finite())) {
            return Err(RuntimeError::InvalidData(format!(
                "input `{}` has a non-finite value (NaN or infinity) at flat index {pos}",
                spec.name
            )));
        }
    }
    batch.ok_or_else(|| RuntimeError::Shape("the model has no inputs to take a batch size from".into()))
}

fn pack(a: &RnnAttrs, w: &WeightStore, prefix: &str) -> rnn::RnnWeights {
    let bias = a.use_bias.then(|| weight(w, &format!("{prefix}/bias")));
    rnn::RnnWeights::pack(
        a,
        weight(w, &format!("{prefix}/kernel")),
        weight(w, &format!("{prefix}/recurrent_kernel")),
        bias,
    )
}

fn to3(x: &ArrayD<f32>) -> Result<Array3<f32>> {
    x.clone().into_dimensionality::<Ix3>().map_err(|_| {
        RuntimeError::Shape(format!("expected a [batch, T, features] sequence, got shape {:?}", x.shape()))
    })
}

fn to2(x: ArrayD<f32>) -> Result<Array2<f32>> {
    let shape = x.shape().to_vec();
    x.as_standard_layout()
        .to_owned()
        .into_dimensionality::<Ix2>()
        .map_err(|_| RuntimeError::Shape(format!("expected a [batch, units] state, got shape {shape:?}")))
}

fn rnn_values(a: &RnnAttrs, out: rnn::RnnOutput, mask: Option<Array2<bool>>) -> Vec<Val> {
    let main = if a.return_sequences {
        Val { t: Tensor::F32(out.sequence.expect("sequences requested").into_dyn()), mask }
    } else {
        Val { t: Tensor::F32(out.last.into_dyn()), mask: None }
    };
    let mut vals = vec![main];
    if a.return_state {
        vals.extend(out.states.into_iter().map(|s| Val { t: Tensor::F32(s.into_dyn()), mask: None }));
    }
    vals
}
