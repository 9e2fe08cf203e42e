//! `no_std` generated code (`seqmodel!("m.seq", weights = "m.safetensors", no_std)`): a model
//! stepped one time step per call, with its weights as `static` arrays in the kernels' packed
//! layout, its states and buffers as fixed-size arrays inside its type, and a step that calls
//! the layers' step kernels ([`seqmodel_kernels::step`]) in one SIMD dispatch. It needs no
//! heap, no file and no `std`; its one error is a non-finite input, returned as a value.
//!
//! The models it covers: one `[T, F]` float input stepped one step at a time (batch 1) and one
//! `[T, O]` or `[O]` output, through LSTM and GRU (`reset_after`) layers with Keras's default
//! activations, Dense layers and activation layers whose functions have SIMD kernels (linear,
//! relu, sigmoid, tanh, exponential, softmax), and Dropout. Anything else is an error that
//! names the layer.

use std::collections::HashMap;

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use seqmodel_kernels::step::{BAKED_WIDTH, pack_blocks};

use crate::ir::{self, Activation, CellKind, Dim, NodeIndex, Op, Program};

/// Why a model has no `no_std` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model `{model}` has no `no_std` code: {why}")]
pub struct NoStdError {
    /// The model.
    pub model: String,
    /// What is not covered.
    pub why: String,
}

/// The `no_std` code of `p` (as written; optimised here for inference) with the weight
/// `values` (by key, row-major; checked against `p` by [`crate::baked::check_weight_file`])
/// baked in. `weights_path` is the file's absolute path, included so that Cargo rebuilds when
/// it changes (the bytes themselves are not kept in the binary).
pub fn model_tokens(
    p: &Program,
    values: &HashMap<String, Vec<f32>>,
    weights_path: &str,
) -> Result<TokenStream, NoStdError> {
    let docs = super::doc_lines(p);
    let fingerprint = p.fingerprint();
    let mut optimised = p.clone();
    ir::passes::for_inference(&mut optimised);
    let p = &optimised;
    let fail = |why: String| NoStdError { model: p.name.clone(), why };
    let (f, o) = step_sizes(p).ok_or_else(|| {
        fail(
            "`no_std` code is a step function: it needs one float input `[T, F]`, stepped one time step per \
             call (batch 1), and one output `[T, O]` or `[O]`"
                .into(),
        )
    })?;
    let weight = |key: String| values.get(&key).ok_or_else(|| fail(format!("the weight `{key}` is missing")));
    let mut statics = Vec::new();
    let mut fields = Vec::new();
    let mut zeros = Vec::new();
    let mut steps = Vec::new();
    let mut resets = Vec::new();
    // Where each node's output is: a field of the model, or the step's input (`None`).
    let mut at: HashMap<NodeIndex, Option<proc_macro2::Ident>> = HashMap::new();
    let kernels = quote! { ::seqmodel::__private::embedded::step };
    for (i, n) in p.topo_order().into_iter().enumerate() {
        let node = &p.graph[n];
        let layer = &node.layer;
        if let Op::Input { .. } = node.op {
            at.insert(n, None);
            continue;
        }
        let [src] = p.node_inputs(n)[..] else {
            return Err(fail(format!("layer `{layer}` takes several inputs")));
        };
        let from = at
            .get(&src.node)
            .cloned()
            .ok_or_else(|| fail(format!("layer `{layer}` reads a second output")))?;
        let x = match &from {
            Some(field) => quote! { m.#field[..] },
            None => quote! { x[..] },
        };
        let prefix = node.weights.clone().unwrap_or_default();
        let mut array = |name: &str,
                         key: &str,
                         rows_cols: Option<(usize, usize)>|
         -> Result<proc_macro2::Ident, NoStdError> {
            let v = weight(format!("{prefix}/{key}"))?;
            let laid = match rows_cols {
                Some((k, c)) => {
                    let mut out = vec![0.0; v.len()];
                    if !pack_blocks(k, c, v, BAKED_WIDTH, &mut out) {
                        return Err(fail(format!("the weight `{prefix}/{key}` is not {k} × {c}")));
                    }
                    out
                }
                None => v.clone(),
            };
            let ident = format_ident!("W{}_{}", i, name);
            let len = laid.len();
            let lits = laid.iter().map(|v| float(*v));
            statics.push(quote! { static #ident: Aligned<#len> = Aligned([#(#lits),*]); });
            Ok(ident)
        };
        let y = format_ident!("y{}", i);
        match &node.op {
            Op::Rnn(a) if !a.return_state => {
                let fused = a.activation == Activation::Tanh && a.recurrent_activation == Activation::Sigmoid;
                let (cell, gates) = match a.cell {
                    CellKind::Lstm if fused => ("LSTM", 4),
                    CellKind::Gru { reset_after: true } if fused => ("GRU", 3),
                    _ => {
                        return Err(fail(format!(
                            "layer `{layer}`: only LSTM and GRU (reset_after=True) with activation tanh and \
                             recurrent_activation sigmoid have step kernels"
                        )));
                    }
                };
                let (d, u) = (a.input_dim, a.units);
                let gu = gates * u;
                let kernel = array("KERNEL", "kernel", Some((d, gu)))?;
                let recurrent = array("RECURRENT", "recurrent_kernel", Some((u, gu)))?;
                let (bias, recurrent_bias) = if a.use_bias {
                    let b = array("BIAS", "bias", None)?;
                    match cell {
                        "GRU" => (
                            quote! { ::core::option::Option::Some(&#b.0[..#gu]) },
                            quote! { ::core::option::Option::Some(&#b.0[#gu..]) },
                        ),
                        _ => (
                            quote! { ::core::option::Option::Some(&#b.0) },
                            quote! { ::core::option::Option::None },
                        ),
                    }
                } else {
                    (quote! { ::core::option::Option::None }, quote! { ::core::option::Option::None })
                };
                let (h, c, xp, rec, new) = (
                    format_ident!("h{}", i),
                    format_ident!("c{}", i),
                    format_ident!("xp{}", i),
                    format_ident!("rec{}", i),
                    format_ident!("new{}", i),
                );
                fields.push(quote! { #h: [f32; #u], #xp: [f32; #gu], #rec: [f32; #gu], #new: [f32; #u], });
                zeros.push(quote! { #h: [0.0; #u], #xp: [0.0; #gu], #rec: [0.0; #gu], #new: [0.0; #u], });
                let lstm = cell == "LSTM";
                if lstm {
                    fields.push(quote! { #c: [f32; #u], });
                    zeros.push(quote! { #c: [0.0; #u], });
                }
                let reset = |owner: TokenStream| {
                    let c = lstm.then(|| quote! { #owner.#c = [0.0; #u]; });
                    quote! { #owner.#h = [0.0; #u]; #c }
                };
                // A layer that is not stateful starts every call (a sequence of one step) from zeros.
                let start = if a.stateful {
                    resets.push(reset(quote! { self }));
                    quote! {}
                } else {
                    reset(quote! { m })
                };
                let weights = quote! {
                    #kernels::RecurrentWeights { kernel: &#kernel.0, recurrent: &#recurrent.0, bias: #bias, recurrent_bias: #recurrent_bias }
                };
                let call = if lstm {
                    quote! {
                        #kernels::LstmStep { weights: #weights, x: &#x, h: &mut m.#h, c: &mut m.#c,
                            work: (&mut m.#xp, &mut m.#rec, &mut m.#new), backwards }.run(s);
                    }
                } else {
                    quote! {
                        #kernels::GruStep { weights: #weights, x: &#x, h: &mut m.#h,
                            work: (&mut m.#xp, &mut m.#rec, &mut m.#new), backwards }.run(s);
                    }
                };
                steps.push(quote! { #start #call });
                at.insert(n, Some(h.clone()));
            }
            Op::Dense { units, input_dim, activation, use_bias } => {
                let act = pointwise(*activation).ok_or_else(|| {
                    fail(format!("layer `{layer}`: activation {activation:?} has no SIMD kernel"))
                })?;
                let kernel = array("KERNEL", "kernel", Some((*input_dim, *units)))?;
                let bias = if *use_bias {
                    let b = array("BIAS", "bias", None)?;
                    quote! { ::core::option::Option::Some(&#b.0) }
                } else {
                    quote! { ::core::option::Option::None }
                };
                fields.push(quote! { #y: [f32; #units], });
                zeros.push(quote! { #y: [0.0; #units], });
                steps.push(quote! {
                    #kernels::DenseStep { x: &#x, kernel: &#kernel.0, bias: #bias, y: &mut m.#y, activation: #act }.run(s);
                });
                at.insert(n, Some(y.clone()));
            }
            Op::Dropout { .. } | Op::Activation(Activation::Linear) => {
                at.insert(n, from);
            }
            Op::Activation(a) => {
                let act = pointwise(*a)
                    .ok_or_else(|| fail(format!("layer `{layer}`: activation {a:?} has no SIMD kernel")))?;
                let width =
                    p.types[&n].first().and_then(|t| t.dims.last()).and_then(|d| d.fixed()).unwrap_or(0);
                fields.push(quote! { #y: [f32; #width], });
                zeros.push(quote! { #y: [0.0; #width], });
                steps.push(quote! { m.#y.copy_from_slice(&#x); #act.apply(s, &mut m.#y); });
                at.insert(n, Some(y.clone()));
            }
            _ => {
                return Err(fail(format!(
                    "layer `{layer}` ({}) has no step kernel (no_std code covers LSTM, GRU, Dense, activations and \
                     Dropout)",
                    node.op.kind_name()
                )));
            }
        }
    }
    let Some(Some(out_field)) = at.get(&p.outputs[0].node).cloned() else {
        return Err(fail("its output is its input".into()));
    };
    let ident = format_ident!("{}", p.name);
    let name = &p.name;
    let input = &p.inputs[0].name;
    let params = p.param_count();
    Ok(quote! {
        #(#[doc = #docs])*
        ///
        /// `no_std` code: the weights are compiled in, the states and buffers are arrays inside
        /// the value, and [`Self::step`] allocates nothing and reads no file.
        #[derive(Debug, Clone)]
        pub struct #ident {
            #(#fields)*
            /// The instruction set the step runs with, detected once.
            arch: ::seqmodel::__private::embedded::pulp::Arch,
            /// The direction of the next recurrent products (they turn at every step).
            backwards: bool,
        }
        const _: () = {
            const _: &[u8] = ::core::include_bytes!(#weights_path);
            /// A weight array on a cache line.
            #[repr(C, align(64))]
            struct Aligned<const N: usize>([f32; N]);
            #(#statics)*
            /// One step of the model with the instruction set `S`.
            struct Step<'m, 'x> {
                m: &'m mut #ident,
                x: &'x [f32; #f],
            }
            impl ::seqmodel::__private::embedded::pulp::WithSimd for Step<'_, '_> {
                type Output = ();
                #[inline(always)]
                fn with_simd<S: ::seqmodel::__private::embedded::pulp::Simd>(self, s: S) {
                    let Step { m, x } = self;
                    let backwards = m.backwards;
                    m.backwards = !backwards;
                    #(#steps)*
                }
            }
            impl #ident {
                /// The model's name in its `.seq` source.
                pub const NAME: &'static str = #name;
                /// Number of weight scalars (Keras's "Total params").
                pub const PARAMS: usize = #params;
                /// The architecture's fingerprint (that of the std code's type).
                pub const FINGERPRINT: u64 = #fingerprint;
                /// Features of a step's input.
                pub const INPUT_FEATURES: usize = #f;
                /// Values of a step's output.
                pub const OUTPUT_FEATURES: usize = #o;

                /// The model with its compiled-in weights, every state zero.
                pub fn new() -> Self {
                    Self {
                        #(#zeros)*
                        arch: ::seqmodel::__private::embedded::pulp::Arch::new(),
                        backwards: false,
                    }
                }

                /// One time step: the step's features in, its outputs out (borrowed from the
                /// model), the states of stateful layers carried to the next call. A NaN or
                /// infinite input is an error, and the states are then left as they were.
                pub fn step(&mut self, x: &[f32; #f]) -> ::core::result::Result<&[f32; #o], ::seqmodel::NonFinite> {
                    ::seqmodel::__private::embedded::step::check_finite(#input, x)?;
                    let arch = self.arch;
                    arch.dispatch(Step { m: self, x });
                    ::core::result::Result::Ok(&self.#out_field)
                }

                /// Forgets the states of every stateful layer (Keras's `reset_states`).
                pub fn reset_states(&mut self) {
                    #(#resets)*
                }
            }
            impl ::core::default::Default for #ident {
                fn default() -> Self {
                    Self::new()
                }
            }
        };
    })
}

/// `(F, O)` of a model stepped one step at a time: one float input `[T, F]` (`T` a symbol or
/// 1) and one output `[T, O]` or `[O]`, batch 1 or undeclared.
fn step_sizes(p: &Program) -> Option<(usize, usize)> {
    let ([input], [output]) = (&p.inputs[..], &p.outputs[..]) else { return None };
    if input.ty.dtype != ir::DType::F32 || output.port != 0 || p.batch.is_some_and(|b| b != 1) {
        return None;
    }
    let stepped = |d: &Dim| matches!(d, Dim::Sym { offset: 0, .. } | Dim::Fixed(1));
    let [time, Dim::Fixed(f)] = input.ty.dims[..] else { return None };
    let out = p.types.get(&output.node)?.first()?;
    let o = match out.dims[..] {
        [t, Dim::Fixed(o)] if t == time => o,
        [Dim::Fixed(o)] => o,
        _ => return None,
    };
    stepped(&time).then_some((f, o))
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

/// A float as a literal that reads back as the same bits (negative values as `-` and the
/// magnitude).
fn float(v: f32) -> TokenStream {
    let magnitude = Literal::f32_suffixed(v.abs());
    if v.is_sign_negative() {
        quote! { -#magnitude }
    } else {
        quote! { #magnitude }
    }
}
