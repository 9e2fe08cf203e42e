//! The execution of one operation on concrete arrays. The interpreter and the code that
//! `seqmodel!` and `seqc build` generate both call these functions, so they compute the
//! same numbers by construction.

use ndarray::{Array2, Array3, ArrayD, Axis, Ix2, Ix3, IxDyn};
use seqmodel_ir::{DType, Dim, MergeMode, Op, RnnAttrs};

use crate::error::{Result, RuntimeError};
use crate::kernels::activation;
use crate::ops::{basic, rnn, time};
use crate::{Tensor, WeightStore};

/// A value flowing along an edge: a tensor and its optional step mask `[B, T]`.
#[derive(Debug, Clone)]
pub struct Value {
    /// The data, batch first.
    pub t: Tensor,
    /// Which steps are real (`true`) when a Masking or `mask_zero` Embedding is upstream.
    pub mask: Option<Array2<bool>>,
}

impl Value {
    /// A model input (no mask).
    pub fn input(t: Tensor) -> Self {
        Value { t, mask: None }
    }

    /// The data as floats (integer outputs, which only an input passed through can be, are
    /// converted).
    pub fn into_f32(self) -> ArrayD<f32> {
        match self.t {
            Tensor::F32(a) => a,
            Tensor::I32(a) => a.mapv(|v| v as f32),
        }
    }
}

/// The carried states of every node of a generated model (`None` = zeros).
pub type States = Vec<Option<Vec<Array2<f32>>>>;

/// One node's weights in the kernels' layout, prepared once at load time.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Dense kernel `[D, U]` and bias.
    Dense {
        /// Row-major kernel.
        kernel: Vec<f32>,
        /// Bias, if any.
        bias: Option<Vec<f32>>,
    },
    /// A recurrent layer.
    Rnn(rnn::RnnWeights),
    /// Forward and backward layers.
    Bidirectional(rnn::RnnWeights, rnn::RnnWeights),
    /// The embedding table.
    Embedding(Array2<f32>),
}

fn weight<'a>(w: &'a WeightStore, key: &str) -> Result<&'a [f32]> {
    w.get(key).and_then(|a| a.as_slice()).ok_or_else(|| RuntimeError::MissingWeight {
        key: key.into(),
        shape: vec![],
        layer: key.rsplit_once('/').map_or(key, |(l, _)| l).into(),
    })
}

/// Prepares the weights of an operation stored under `prefix` (`None` for ops without
/// weights). `w` must hold standard-layout arrays.
pub fn prepare(op: &Op, w: &WeightStore, prefix: &str) -> Result<Option<Prepared>> {
    let key = |v: &str| format!("{prefix}/{v}");
    Ok(Some(match op {
        Op::Dense { use_bias, .. } => Prepared::Dense {
            kernel: weight(w, &key("kernel"))?.to_vec(),
            bias: if *use_bias { Some(weight(w, &key("bias"))?.to_vec()) } else { None },
        },
        Op::Rnn(a) | Op::RepeatRnn { rnn: a, .. } => Prepared::Rnn(pack(a, w, prefix)?),
        Op::Bidirectional { forward, backward, .. } => Prepared::Bidirectional(
            pack(forward, w, &format!("{prefix}/forward"))?,
            pack(backward, w, &format!("{prefix}/backward"))?,
        ),
        Op::Embedding { .. } => Prepared::Embedding(
            w.get(&key("embeddings"))
                .ok_or_else(|| RuntimeError::WeightFile(format!("missing {}", key("embeddings"))))?
                .clone()
                .into_dimensionality::<Ix2>()
                .map_err(|e| RuntimeError::WeightFile(e.to_string()))?,
        ),
        _ => return Ok(None),
    }))
}

/// Runs one operation on its input values. `prepared` holds the node's weights, `state` the
/// carried states of a stateful layer, `out_time` the resolved first dimension of the output
/// type (the count of RepeatVector, the length of a time slice).
#[allow(clippy::too_many_arguments)] // the full context of one node, passed explicitly
pub fn node(
    op: &Op,
    layer: &str,
    prepared: Option<&Prepared>,
    ins: Vec<Value>,
    state: &mut Option<Vec<Array2<f32>>>,
    out_time: Option<usize>,
    batch: usize,
) -> Result<Vec<Value>> {
    let f32_in = |i: usize| -> Result<&ArrayD<f32>> {
        ins[i].t.as_f32().ok_or_else(|| RuntimeError::Shape(format!("layer `{}` got integer data", layer)))
    };
    let plain = |t: ArrayD<f32>, mask: Option<Array2<bool>>| Ok(vec![Value { t: Tensor::F32(t), mask }]);
    match op {
        Op::Input { .. } => Err(RuntimeError::Shape("model inputs are fed by the caller".into())),
        Op::Dense { units, activation, .. } => {
            let Some(Prepared::Dense { kernel, bias }) = prepared else { unreachable!("prepared at load") };
            plain(basic::dense(f32_in(0)?, kernel, bias.as_deref(), *units, *activation), ins[0].mask.clone())
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
                return Err(RuntimeError::Shape(format!("Embedding `{}` needs integer ids", layer)));
            };
            let Some(Prepared::Embedding(table)) = prepared else { unreachable!("prepared at load") };
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
                state.clone()
            } else {
                None
            };
            let Some(Prepared::Rnn(w)) = prepared else { unreachable!("prepared at load") };
            let mask = ins[0].mask.clone();
            let out = rnn::forward(&a, w, x.view(), mask.as_ref().map(|m| m.view()), initial, false);
            if a.stateful {
                *state = Some(out.states.clone());
            }
            Ok(rnn_values(&a, out, mask))
        }
        Op::RepeatRnn { rnn: a, .. } => {
            let a = *a;
            let x = f32_in(0)?
                .as_standard_layout()
                .to_owned()
                .into_dimensionality::<Ix2>()
                .map_err(|_| RuntimeError::Shape(format!("layer `{layer}` expects vectors")))?;
            let steps = out_time.ok_or_else(|| {
                RuntimeError::Shape(format!(
                    "layer `{layer}`: the number of steps is not determined by the inputs"
                ))
            })?;
            let initial = if a.stateful { state.clone() } else { None };
            let Some(Prepared::Rnn(w)) = prepared else { unreachable!("prepared at load") };
            let out = rnn::forward_repeated(&a, w, x.view(), steps, initial);
            if a.stateful {
                *state = Some(out.states.clone());
            }
            Ok(rnn_values(&a, out, None))
        }
        Op::Bidirectional { forward, backward, merge } => {
            let (fa, ba, merge) = (*forward, *backward, *merge);
            let x = to3(f32_in(0)?)?;
            let mask = ins[0].mask.clone();
            let saved = if fa.stateful { state.clone() } else { None };
            let (fi, bi) = match saved {
                Some(s) => {
                    let k = fa.cell.states();
                    (Some(s[..k].to_vec()), Some(s[k..].to_vec()))
                }
                None => (None, None),
            };
            let Some(Prepared::Bidirectional(fw, bw)) = prepared else { unreachable!("prepared at load") };
            let zero = mask.is_some();
            let fo = rnn::forward(&fa, fw, x.view(), mask.as_ref().map(|m| m.view()), fi, zero);
            let bo = rnn::forward(&ba, bw, x.view(), mask.as_ref().map(|m| m.view()), bi, zero);
            if fa.stateful {
                let mut s = fo.states.clone();
                s.extend(bo.states.clone());
                *state = Some(s);
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
                    Value { t: Tensor::F32(f_main), mask: out_mask.clone() },
                    Value { t: Tensor::F32(b_main), mask: out_mask },
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
                    vec![Value { t: Tensor::F32(merged), mask: out_mask }]
                }
            };
            if fa.return_state {
                for s in fo.states.into_iter().chain(bo.states) {
                    vals.push(Value { t: Tensor::F32(s.into_dyn()), mask: None });
                }
            }
            Ok(vals)
        }
        Op::RepeatVector => {
            let count = out_time.ok_or_else(|| {
                RuntimeError::Shape(format!(
                    "RepeatVector `{layer}`: its count is not determined by the inputs; pass it as a dimension"
                ))
            })?;
            plain(time::repeat(f32_in(0)?, count), None)
        }
        Op::TimeSlice { start, end } => {
            let expected = out_time;
            plain(time::slice(f32_in(0)?, *start, *end, expected)?, None)
        }
        Op::TimeStep { index } => plain(time::step(f32_in(0)?, *index)?, None),
        Op::ZeroPad { left, right } => plain(time::pad(f32_in(0)?, *left, *right), None),
        Op::Merge(kind) => {
            let xs: Vec<&ArrayD<f32>> = (0..ins.len()).map(&f32_in).collect::<Result<_>>()?;
            let masks: Vec<&Array2<bool>> = ins.iter().filter_map(|v| v.mask.as_ref()).collect();
            let mask = (!masks.is_empty() && masks.iter().all(|m| m.dim() == masks[0].dim())).then(|| {
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
            Ok(vec![Value { t, mask: None }])
        }
        Op::UnfoldTime => {
            let outer = ins[1].t.shape();
            let (b, t) = (outer[0], outer[1]);
            let inner = f32_in(0)?;
            let mut s = vec![b, t];
            s.extend_from_slice(&inner.shape()[1..]);
            let out = inner.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&s)).expect("unfold");
            plain(out, ins[1].mask.clone())
        }
    }
}

fn pack(a: &RnnAttrs, w: &WeightStore, prefix: &str) -> Result<rnn::RnnWeights> {
    let bias = if a.use_bias { Some(weight(w, &format!("{prefix}/bias"))?) } else { None };
    Ok(rnn::RnnWeights::pack(
        a,
        weight(w, &format!("{prefix}/kernel"))?,
        weight(w, &format!("{prefix}/recurrent_kernel"))?,
        bias,
    ))
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

fn rnn_values(a: &RnnAttrs, out: rnn::RnnOutput, mask: Option<Array2<bool>>) -> Vec<Value> {
    let main = if a.return_sequences {
        Value { t: Tensor::F32(out.sequence.expect("sequences requested").into_dyn()), mask }
    } else {
        Value { t: Tensor::F32(out.last.into_dyn()), mask: None }
    };
    let mut vals = vec![main];
    if a.return_state {
        vals.extend(out.states.into_iter().map(|s| Value { t: Tensor::F32(s.into_dyn()), mask: None }));
    }
    vals
}

/// One declared model input.
#[derive(Debug, Clone, Copy)]
pub struct InputSig<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its element type.
    pub dtype: DType,
    /// Its dimensions (batch excluded).
    pub dims: &'a [Dim],
}

/// What a model's inputs must look like.
#[derive(Debug, Clone, Copy)]
pub struct Signature<'a> {
    /// The model's name.
    pub model: &'a str,
    /// The inputs in order.
    pub inputs: &'a [InputSig<'a>],
    /// Names of the dimension symbols.
    pub symbols: &'a [&'a str],
    /// Fixed batch size, if declared.
    pub batch: Option<usize>,
}

fn show(sig: &Signature<'_>, i: &InputSig<'_>) -> String {
    let mut parts = vec![sig.batch.map_or("None".to_string(), |b| b.to_string())];
    for d in i.dims {
        parts.push(match *d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Sym { id, offset } => {
                let n = sig.symbols.get(id).copied().unwrap_or("?");
                match offset {
                    0 => n.to_string(),
                    o if o > 0 => format!("{n}+{o}"),
                    o => format!("{n}-{}", -o),
                }
            }
        });
    }
    format!("({}) {}", parts.join(", "), i.dtype)
}

/// Checks inputs against a signature (count, dtype, rank, fixed dims, consistent symbols,
/// batch, finite values), binds the symbols, and returns the batch size.
pub fn bind_inputs(sig: &Signature<'_>, inputs: &[Tensor], bindings: &mut [Option<usize>]) -> Result<usize> {
    if inputs.len() != sig.inputs.len() {
        return Err(RuntimeError::InputCount {
            model: sig.model.into(),
            expected: sig.inputs.len(),
            found: inputs.len(),
        });
    }
    let mut batch = sig.batch;
    for (spec, x) in sig.inputs.iter().zip(inputs) {
        let expected = || show(sig, spec);
        let found = || format!("{:?} {}", x.shape(), x.dtype_name());
        let err = |expected: String| RuntimeError::InputShape {
            model: sig.model.into(),
            input: spec.name.into(),
            expected,
            found: found(),
        };
        let dtype_ok = matches!((spec.dtype, x), (DType::F32, Tensor::F32(_)) | (DType::I32, Tensor::I32(_)));
        if !dtype_ok || x.shape().len() != spec.dims.len() + 1 {
            return Err(err(expected()));
        }
        let b = x.shape()[0];
        match batch {
            Some(want) if want != b => {
                let why = if sig.batch.is_some() { ", fixed by the model" } else { ", as the other inputs" };
                return Err(err(format!("{} (batch size {want}{why})", expected())));
            }
            _ => batch = Some(b),
        }
        for (d, &got) in spec.dims.iter().zip(&x.shape()[1..]) {
            match *d {
                Dim::Fixed(n) if n != got => return Err(err(expected())),
                Dim::Fixed(_) => {}
                Dim::Sym { id, offset } => {
                    let v = got as i64 - offset;
                    if v < 0 {
                        return Err(err(expected()));
                    }
                    match bindings[id] {
                        Some(prev) if prev as i64 != v => {
                            let name = sig.symbols.get(id).copied().unwrap_or("?");
                            return Err(err(format!(
                                "{} with {name} = {prev} as in an earlier input",
                                expected()
                            )));
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

/// The run-time size of a dimension given the bound symbols.
pub fn resolve(d: Dim, bindings: &[Option<usize>]) -> Option<usize> {
    d.resolve(bindings)
}

/// The size `exec::node` needs besides the inputs: a fused RepeatVector→RNN's step count,
/// otherwise the first dimension of the node's output type.
pub fn out_time(op: &Op, first_output_dim: Option<Dim>, bindings: &[Option<usize>]) -> Option<usize> {
    match op {
        Op::RepeatRnn { steps, .. } => steps.resolve(bindings),
        _ => first_output_dim.and_then(|d| d.resolve(bindings)),
    }
}
