//! Which models the step kernels ([`seqmodel_kernels::step`]) run, and as what: one float
//! input `[T, F]` stepped one time step per call (batch 1), one `[T, O]` or `[O]` output, and
//! a chain of LSTM and GRU (`reset_after`) layers with Keras's default activations, Dense
//! layers and activation layers whose functions have SIMD kernels, and Dropout (an identity at
//! inference). The `no_std` code ([`super::embedded`]) and the std code's `step_one` both
//! generate from this one description.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{self, Activation, CellKind, Dim, Op, Program, RnnAttrs};

/// One layer of a stepped model, in the order the step runs them.
#[derive(Debug, Clone)]
pub(super) struct StepLayer<'p> {
    /// Its node's position in the program's topological order (names its buffers).
    pub index: usize,
    /// The layer's name.
    pub layer: &'p str,
    /// Its weights' key prefix.
    pub weights: &'p str,
    /// The layer whose output it reads (by `index`), or the step's input (`None`).
    pub from: Option<usize>,
    /// Over a fixed-length window, the layer runs once after the last step (it reads the last
    /// output of a recurrent layer without `return_sequences`, or a layer that does).
    pub once: bool,
    /// What it computes.
    pub kind: StepKind<'p>,
}

/// What a [`StepLayer`] computes.
#[derive(Debug, Clone)]
pub(super) enum StepKind<'p> {
    /// An LSTM (`lstm`) or GRU layer.
    Recurrent {
        /// Its attributes.
        attrs: &'p RnnAttrs,
        /// LSTM (else GRU with `reset_after`).
        lstm: bool,
    },
    /// A Dense layer.
    Dense {
        /// Its outputs.
        units: usize,
        /// Its inputs.
        input_dim: usize,
        /// With a bias.
        use_bias: bool,
        /// The step kernels' activation (a `Pointwise` expression).
        activation: TokenStream,
    },
    /// An activation layer over `width` values.
    Map {
        /// The values.
        width: usize,
        /// The step kernels' activation.
        activation: TokenStream,
    },
}

impl StepKind<'_> {
    /// The length of the layer's output.
    pub fn width(&self) -> usize {
        match self {
            StepKind::Recurrent { attrs, .. } => attrs.units,
            StepKind::Dense { units, .. } => *units,
            StepKind::Map { width, .. } => *width,
        }
    }

    /// Gate columns of a recurrent layer (`G·U`; 0 for another layer).
    pub fn gate_columns(&self) -> usize {
        match self {
            StepKind::Recurrent { attrs, lstm } => attrs.units * if *lstm { 4 } else { 3 },
            _ => 0,
        }
    }

    /// The length of one of the layer's weights or buffers as [`kernel_call`] names them:
    /// `"kernel"`, `"recurrent"`, `"bias"`, `"recurrent_bias"`, `"xp"`, `"rec"`, and the
    /// output-sized `"h"`, `"c"`, `"new"` and `"y"`.
    pub fn len(&self, part: &str) -> usize {
        let gu = self.gate_columns();
        match (self, part) {
            (StepKind::Recurrent { attrs, .. }, "kernel") => attrs.input_dim * gu,
            (StepKind::Recurrent { attrs, .. }, "recurrent") => attrs.units * gu,
            (StepKind::Recurrent { .. }, "bias" | "recurrent_bias" | "xp" | "rec") => gu,
            (StepKind::Dense { units, input_dim, .. }, "kernel") => units * input_dim,
            _ => self.width(),
        }
    }
}

/// A model the step kernels run: `f` floats in, `o` out, its layers in order, and the layer
/// whose output is the model's (`output`, an index of a layer).
#[derive(Debug, Clone)]
pub(super) struct Stepped<'p> {
    /// Features of a step's input.
    pub f: usize,
    /// Values of a step's output.
    pub o: usize,
    /// `Some(T)` for a model whose input is a fixed-length window `[T, F]` (`T > 1`), run over
    /// a whole window per call; `None` for one stepped one time step per call.
    pub window: Option<usize>,
    /// Over a window, whether the output is one row per step (`[T, O]`) rather than `[O]`.
    pub per_step_output: bool,
    /// The layers.
    pub layers: Vec<StepLayer<'p>>,
    /// The `index` of the layer whose output is the model's.
    pub output: usize,
}

/// `p` (optimised for inference) as the step kernels run it, or why it cannot be.
pub(super) fn stepped(p: &Program) -> Result<Stepped<'_>, String> {
    let (f, o, window, per_step_output) = step_sizes(p).ok_or_else(|| {
        "`no_std` code needs one float input `[T, F]` (`T` stepped one time step per call, or a fixed \
         window length), batch 1, and one output `[T, O]` or `[O]`"
            .to_string()
    })?;
    let mut layers: Vec<StepLayer<'_>> = Vec::new();
    // Where each node's output is: a layer's index, or the step's input (`None`).
    let mut at = std::collections::HashMap::new();
    // The layers whose output is final over a window (the last step's, not one per step).
    let mut finals = std::collections::HashSet::new();
    for (index, n) in p.topo_order().into_iter().enumerate() {
        let node = &p.graph[n];
        let layer = node.layer.as_str();
        if let Op::Input { .. } = node.op {
            at.insert(n, None);
            continue;
        }
        let [src] = p.node_inputs(n)[..] else {
            return Err(format!("layer `{layer}` takes several inputs"));
        };
        let from = *at
            .get(&src.node)
            .filter(|_| src.port == 0)
            .ok_or_else(|| format!("layer `{layer}` reads a second output"))?;
        let simd = |a: Activation| {
            pointwise(a).ok_or_else(|| format!("layer `{layer}`: activation {a:?} has no SIMD kernel"))
        };
        let kind = match &node.op {
            Op::Rnn(attrs) if !attrs.return_state => {
                let fused =
                    attrs.activation == Activation::Tanh && attrs.recurrent_activation == Activation::Sigmoid;
                let lstm = match attrs.cell {
                    CellKind::Lstm if fused => true,
                    CellKind::Gru { reset_after: true } if fused => false,
                    _ => {
                        return Err(format!(
                            "layer `{layer}`: only LSTM and GRU (reset_after=True) with activation tanh and \
                             recurrent_activation sigmoid have step kernels"
                        ));
                    }
                };
                StepKind::Recurrent { attrs, lstm }
            }
            Op::Dense { units, input_dim, activation, use_bias } => StepKind::Dense {
                units: *units,
                input_dim: *input_dim,
                use_bias: *use_bias,
                activation: simd(*activation)?,
            },
            // Identities at inference: the output is the input's.
            Op::Dropout { .. } | Op::Activation(Activation::Linear) => {
                at.insert(n, from);
                continue;
            }
            Op::Activation(a) => {
                let width =
                    p.types[&n].first().and_then(|t| t.dims.last()).and_then(|d| d.fixed()).unwrap_or(0);
                StepKind::Map { width, activation: simd(*a)? }
            }
            _ => {
                return Err(format!(
                    "layer `{layer}` ({}) has no step kernel (the step kernels cover LSTM, GRU, Dense, \
                     activations and Dropout)",
                    node.op.kind_name()
                ));
            }
        };
        let weights = node.weights.as_deref().unwrap_or_default();
        let once = from.is_some_and(|j| finals.contains(&j));
        if once && matches!(kind, StepKind::Recurrent { .. }) {
            return Err(format!("layer `{layer}` reads one vector, not a sequence"));
        }
        if once || matches!(kind, StepKind::Recurrent { attrs, .. } if !attrs.return_sequences) {
            finals.insert(index);
        }
        layers.push(StepLayer { index, layer, weights, from, once, kind });
        at.insert(n, Some(index));
    }
    let Some(Some(output)) = at.get(&p.outputs[0].node).copied() else {
        return Err("its output is its input".into());
    };
    if window.is_some() && per_step_output == finals.contains(&output) {
        return Err("its output is not the sequence or the last step its layers compute".into());
    }
    Ok(Stepped { f, o, window, per_step_output, layers, output })
}

/// `(F, O, window, per-step output)` of a model the step kernels run: one float input
/// `[T, F]` and one output `[T, O]` or `[O]`, batch 1 or undeclared; `T` a symbol or 1
/// (stepped: window `None`) or a fixed length above 1 (window `Some(T)`).
fn step_sizes(p: &Program) -> Option<(usize, usize, Option<usize>, bool)> {
    let ([input], [output]) = (&p.inputs[..], &p.outputs[..]) else { return None };
    if input.ty.dtype != ir::DType::F32 || output.port != 0 || p.batch.is_some_and(|b| b != 1) {
        return None;
    }
    let stepped = |d: &Dim| matches!(d, Dim::Sym { offset: 0, .. } | Dim::Fixed(1));
    let [time, Dim::Fixed(f)] = input.ty.dims[..] else { return None };
    let out = p.types.get(&output.node)?.first()?;
    let (o, per_step) = match out.dims[..] {
        [t, Dim::Fixed(o)] if t == time => (o, true),
        [Dim::Fixed(o)] => (o, false),
        _ => return None,
    };
    match time {
        Dim::Fixed(t) if t > 1 => Some((f, o, Some(t), per_step)),
        _ => stepped(&time).then_some((f, o, None, per_step)),
    }
}

/// The step kernels' form of an activation, if it has one.
fn pointwise(a: Activation) -> Option<TokenStream> {
    let k = quote! { ::seqmodel::__private::embedded };
    Some(match a {
        Activation::Linear => quote! { #k::step::Pointwise::Linear },
        Activation::Softmax => quote! { #k::step::Pointwise::Softmax },
        Activation::Relu => quote! { #k::step::Pointwise::Map(#k::Unary::Relu) },
        Activation::Sigmoid => quote! { #k::step::Pointwise::Map(#k::Unary::Sigmoid) },
        Activation::Tanh => quote! { #k::step::Pointwise::Map(#k::Unary::Tanh) },
        Activation::Exponential => quote! { #k::step::Pointwise::Map(#k::Unary::Exp) },
        _ => return None,
    })
}

/// The call of `layer`'s step kernel inside a `with_simd` body (instruction set `s`, the
/// recurrent products' direction `backwards`): `x` is its input slice, `weight(part)` gives
/// the expressions of its weights (`"kernel"`, `"recurrent"` and `"width"`, and `"bias"` and
/// `"recurrent_bias"` as `Option<&[f32]>`), and `buffer(part)` those of its buffers
/// (`"h"`, `"c"`, `"xp"`, `"rec"`, `"new"`, `"y"`), each a `&mut [f32]`.
pub(super) fn kernel_call(
    layer: &StepLayer<'_>,
    x: TokenStream,
    weight: &dyn Fn(&str) -> TokenStream,
    buffer: &dyn Fn(&str) -> TokenStream,
) -> TokenStream {
    let k = quote! { ::seqmodel::__private::embedded::step };
    match &layer.kind {
        StepKind::Recurrent { lstm, .. } => {
            let (width, kernel, recurrent) = (weight("width"), weight("kernel"), weight("recurrent"));
            let (bias, recurrent_bias) = (weight("bias"), weight("recurrent_bias"));
            let weights = quote! {
                #k::RecurrentWeights { width: #width, kernel: #kernel, recurrent: #recurrent, bias: #bias, recurrent_bias: #recurrent_bias }
            };
            let (h, xp, rec, new) = (buffer("h"), buffer("xp"), buffer("rec"), buffer("new"));
            if *lstm {
                let c = buffer("c");
                quote! { #k::LstmStep { weights: #weights, x: #x, h: #h, c: #c, work: (#xp, #rec, #new), backwards }.run(s); }
            } else {
                quote! { #k::GruStep { weights: #weights, x: #x, h: #h, work: (#xp, #rec, #new), backwards }.run(s); }
            }
        }
        StepKind::Dense { activation, .. } => {
            let (kernel, width, bias, y) = (weight("kernel"), weight("width"), weight("bias"), buffer("y"));
            quote! { #k::DenseStep { x: #x, kernel: #kernel, width: #width, bias: #bias, y: #y, activation: #activation }.run(s); }
        }
        StepKind::Map { activation, .. } => {
            let y = buffer("y");
            quote! { #k::copy(#y, #x); #activation.apply(s, #y); }
        }
    }
}
