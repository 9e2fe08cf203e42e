//! Code generation: one specialised Rust type per checked model. A model of recurrent, Dense
//! and activation layers gets specialised `run` code (module `direct`: each node a typed field
//! called on plain buffers with its sizes as literals); any other model gets straight-line
//! code, one `seqmodel::exec::node_into` call per node with the node's operation as a
//! constant. Weights are prepared once in `new`. Both forms call the layers' own forward
//! passes, the ones the interpreter runs, so all give the same numbers by construction.

use std::collections::HashMap;

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{self, Activation, CellKind, Dim, MergeKind, MergeMode, Op, Program, RnnAttrs};

mod direct;

fn act(a: Activation) -> TokenStream {
    let v = format_ident!("{}", format!("{a:?}"));
    quote! { ::seqmodel::ir::Activation::#v }
}

fn rnn_attrs(a: &RnnAttrs) -> TokenStream {
    let cell = match a.cell {
        CellKind::Lstm => quote! { ::seqmodel::ir::CellKind::Lstm },
        CellKind::SimpleRnn => quote! { ::seqmodel::ir::CellKind::SimpleRnn },
        CellKind::Gru { reset_after } => {
            quote! { ::seqmodel::ir::CellKind::Gru { reset_after: #reset_after } }
        }
    };
    let (units, input_dim) = (a.units, a.input_dim);
    let (act_, ract) = (act(a.activation), act(a.recurrent_activation));
    let (ub, rs, rst, gb, sf, un) =
        (a.use_bias, a.return_sequences, a.return_state, a.go_backwards, a.stateful, a.unroll);
    let (d, rd) = (Literal::f32_suffixed(a.dropout), Literal::f32_suffixed(a.recurrent_dropout));
    quote! {
        ::seqmodel::ir::RnnAttrs {
            cell: #cell, units: #units, input_dim: #input_dim, activation: #act_,
            recurrent_activation: #ract, use_bias: #ub, return_sequences: #rs, return_state: #rst,
            go_backwards: #gb, stateful: #sf, unroll: #un, dropout: #d, recurrent_dropout: #rd,
        }
    }
}

/// The operation as a Rust constant expression.
pub fn op_tokens(op: &Op) -> TokenStream {
    let ir = quote! { ::seqmodel::ir };
    match op {
        Op::Input { index } => quote! { #ir::Op::Input { index: #index } },
        Op::Dense { units, input_dim, activation, use_bias } => {
            let a = act(*activation);
            quote! { #ir::Op::Dense { units: #units, input_dim: #input_dim, activation: #a, use_bias: #use_bias } }
        }
        Op::Activation(a) => {
            let a = act(*a);
            quote! { #ir::Op::Activation(#a) }
        }
        Op::Rnn(a) => {
            let a = rnn_attrs(a);
            quote! { #ir::Op::Rnn(#a) }
        }
        Op::RepeatRnn { rnn, steps } => {
            let (a, st) = (rnn_attrs(rnn), dim_tokens(*steps));
            quote! { #ir::Op::RepeatRnn { rnn: #a, steps: #st } }
        }
        Op::Bidirectional { forward, backward, merge } => {
            let (f, b) = (rnn_attrs(forward), rnn_attrs(backward));
            let m = format_ident!("{}", format!("{merge:?}"));
            let _ = MergeMode::Concat;
            quote! { #ir::Op::Bidirectional { forward: #f, backward: #b, merge: #ir::MergeMode::#m } }
        }
        Op::RepeatVector => quote! { #ir::Op::RepeatVector },
        Op::Embedding { input_dim, output_dim, mask_zero } => {
            quote! { #ir::Op::Embedding { input_dim: #input_dim, output_dim: #output_dim, mask_zero: #mask_zero } }
        }
        Op::Masking { mask_value } => {
            let v = Literal::f32_suffixed(*mask_value);
            quote! { #ir::Op::Masking { mask_value: #v } }
        }
        Op::TimeSlice { start, end } => {
            let end = match end {
                Some(e) => quote! { ::core::option::Option::Some(#e) },
                None => quote! { ::core::option::Option::None },
            };
            quote! { #ir::Op::TimeSlice { start: #start, end: #end } }
        }
        Op::TimeStep { index } => quote! { #ir::Op::TimeStep { index: #index } },
        Op::ZeroPad { left, right } => quote! { #ir::Op::ZeroPad { left: #left, right: #right } },
        Op::Dropout { rate } => {
            let r = Literal::f32_suffixed(*rate);
            quote! { #ir::Op::Dropout { rate: #r } }
        }
        Op::Merge(kind) => {
            let k = match kind {
                MergeKind::Concatenate { axis } => quote! { #ir::MergeKind::Concatenate { axis: #axis } },
                other => {
                    let v = format_ident!("{}", format!("{other:?}"));
                    quote! { #ir::MergeKind::#v }
                }
            };
            quote! { #ir::Op::Merge(#k) }
        }
        Op::FoldTime => quote! { #ir::Op::FoldTime },
        Op::UnfoldTime => quote! { #ir::Op::UnfoldTime },
        Op::Layer(l) => {
            let l: TokenStream = ir::RustLiteral::rust(l).parse().expect("a layer's literal is Rust");
            quote! { #ir::Op::Layer(#l) }
        }
    }
}

fn dim_tokens(d: Dim) -> TokenStream {
    match d {
        Dim::Fixed(n) => quote! { ::seqmodel::ir::Dim::Fixed(#n) },
        Dim::Sym { id, offset } => quote! { ::seqmodel::ir::Dim::Sym { id: #id, offset: #offset } },
    }
}

/// The doc comment of a model type: its `///` lines and its summary table.
fn doc_lines(p: &Program) -> Vec<String> {
    let mut docs: Vec<String> = p.docs.iter().map(|d| format!(" {d}")).collect();
    if !docs.is_empty() {
        docs.push(String::new());
    }
    docs.push(" ```text".into());
    docs.extend(crate::summary::render(p).lines().map(|l| format!(" {l}")));
    docs.push(" ```".into());
    docs
}

/// The program as constant node descriptions (for training from a generated type).
fn graph_desc(p: &Program) -> TokenStream {
    let order = p.topo_order();
    let pos: HashMap<ir::NodeIndex, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let nodes = order.iter().map(|n| {
        let node = &p.graph[*n];
        let op = op_tokens(&node.op);
        let (layer, scope) = (&node.layer, &node.scope);
        let weights = match &node.weights {
            Some(w) => quote! { ::core::option::Option::Some(#w) },
            None => quote! { ::core::option::Option::None },
        };
        let ins = p.node_inputs(*n).into_iter().map(|q| {
            let (s, port) = (pos[&q.node], q.port);
            quote! { (#s, #port) }
        });
        let outs = p.types[n].iter().map(|t| {
            let dims = t.dims.iter().map(|d| dim_tokens(*d));
            let dt = match t.dtype {
                ir::DType::F32 => quote! { ::seqmodel::ir::DType::F32 },
                ir::DType::I32 => quote! { ::seqmodel::ir::DType::I32 },
            };
            quote! { (&[#(#dims),*], #dt) }
        });
        quote! {
            ::seqmodel::ir::NodeDesc { op: #op, layer: #layer, scope: #scope, weights: #weights, inputs: &[#(#ins),*], outputs: &[#(#outs),*] }
        }
    });
    let inputs = p.inputs.iter().map(|i| {
        let (n, at) = (&i.name, pos[&i.node]);
        quote! { (#n, #at) }
    });
    let outputs = p.outputs.iter().map(|o| {
        let (n, port) = (pos[&o.node], o.port);
        quote! { (#n, #port) }
    });
    let name = &p.name;
    let symbols = &p.symbols;
    let batch = match p.batch {
        Some(b) => quote! { ::core::option::Option::Some(#b) },
        None => quote! { ::core::option::Option::None },
    };
    quote! {
        /// The program as written (before inference optimisations), for training.
        pub fn program() -> ::seqmodel::ir::Program {
            const NODES: &[::seqmodel::ir::NodeDesc] = &[#(#nodes),*];
            ::seqmodel::ir::Program::from_descs(#name, NODES, &[#(#inputs),*], &[#(#outputs),*], &[#(#symbols),*], #batch)
        }

        /// A trainer (Keras's `compile`) starting from this model's weights; get the trained
        /// model back with [`Self::new`] on `trainer.weights()`.
        pub fn trainer(
            &self,
            loss: ::seqmodel::train::Loss,
            optimizer: ::seqmodel::train::Optimizer,
        ) -> ::core::result::Result<::seqmodel::train::Trainer, ::seqmodel::RuntimeError> {
            ::seqmodel::train::Trainer::new(Self::program(), self.weights.clone(), loss, optimizer)
        }
    }
}

/// The type and impl of one model, specialised to its graph.
pub fn model_tokens(p: &Program) -> TokenStream {
    let docs = doc_lines(p);
    let training = graph_desc(p);
    // Of the program as written (what weight files record), not the optimised one.
    let fingerprint = p.fingerprint();
    let mut optimised = p.clone();
    ir::passes::for_inference(&mut optimised);
    let p = &optimised;
    let ident = format_ident!("{}", p.name);
    let name = &p.name;
    let params = p.param_count();
    let order = p.topo_order();
    let pos: HashMap<ir::NodeIndex, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let n_nodes = order.len();
    let ops = order.iter().map(|n| op_tokens(&p.graph[*n].op));
    let specs: Vec<TokenStream> = p
        .weight_specs()
        .iter()
        .map(|w| {
            let (k, s) = (&w.key, &w.shape);
            quote! { (#k, &[#(#s),*]) }
        })
        .collect();
    let prepare: Vec<TokenStream> = order
        .iter()
        .enumerate()
        .map(|(i, n)| match &p.graph[*n].weights {
            Some(prefix) => quote! { ::seqmodel::__private::exec::prepare(&OPS[#i], &std, #prefix)? },
            None => quote! { ::core::option::Option::None },
        })
        .collect();
    let inputs_sig = p.inputs.iter().map(|i| {
        let n = &i.name;
        let dt = match i.ty.dtype {
            ir::DType::F32 => quote! { ::seqmodel::ir::DType::F32 },
            ir::DType::I32 => quote! { ::seqmodel::ir::DType::I32 },
        };
        let dims = i.ty.dims.iter().map(|d| dim_tokens(*d));
        quote! { ::seqmodel::__private::exec::InputSig { name: #n, dtype: #dt, dims: &[#(#dims),*] } }
    });
    let symbols = &p.symbols;
    let n_sym = p.symbols.len();
    let batch = match p.batch {
        Some(b) => quote! { ::core::option::Option::Some(#b) },
        None => quote! { ::core::option::Option::None },
    };
    // Each input as a typed parameter, owned (`predict`) or borrowed (`run`).
    let input_params = |borrowed: bool| -> Vec<TokenStream> {
        p.inputs.iter().map(|i| input_arg(&i.name, i.ty.dtype, borrowed)).collect()
    };
    // A dimension no input determines is a `usize` argument after the inputs.
    let free = p.free_symbols();
    let input_names: Vec<&str> = p.inputs.iter().map(|i| i.name.as_str()).collect();
    let dim_args: Vec<proc_macro2::Ident> =
        free.iter().map(|&id| dim_arg(&p.symbols[id], id, &input_names)).collect();
    let dim_params: Vec<TokenStream> = dim_args.iter().map(|a| quote! { #a: usize }).collect();
    let mut args = input_params(false);
    args.extend(dim_params.iter().cloned());
    let mut view_args = input_params(true);
    view_args.extend(dim_params);
    let arg_names: Vec<_> = p.inputs.iter().map(|i| format_ident!("{}", i.name)).collect();
    let bind_free: Vec<TokenStream> = free
        .iter()
        .zip(&dim_args)
        .map(|(id, a)| quote! { bindings[#id] = ::core::option::Option::Some(#a); })
        .collect();
    // One statement per node, writing into the node's reusable output buffers.
    let mut body = Vec::new();
    for (i, n) in order.iter().enumerate() {
        let node = &p.graph[*n];
        if let Op::Input { .. } = node.op {
            continue;
        }
        let sources = p.node_inputs(*n);
        let ins = sources.iter().map(|q| {
            let port = q.port;
            match p.graph[q.node].op {
                Op::Input { index } => {
                    quote! { ::seqmodel::__private::exec::ValueRef::input(inputs[#index].reborrow()) }
                }
                _ => {
                    let j = pos[&q.node];
                    quote! { done[#j][#port].view() }
                }
            }
        });
        let done = if sources.iter().any(|q| !matches!(p.graph[q.node].op, Op::Input { .. })) {
            quote! { done }
        } else {
            quote! { _ }
        };
        let time_dim = match &node.op {
            Op::RepeatRnn { steps, .. } => Some(steps),
            _ => p.types[n].first().and_then(|t| t.dims.first()),
        };
        let out_time = match time_dim {
            Some(Dim::Fixed(k)) => quote! { ::core::option::Option::Some(#k) },
            Some(d) => {
                let d = dim_tokens(*d);
                quote! { ::seqmodel::__private::exec::resolve(#d, &bindings) }
            }
            None => quote! { ::core::option::Option::None },
        };
        let layer = &node.layer;
        body.push(quote! {
            {
                let (#done, rest) = values.split_at_mut(#i);
                ::seqmodel::__private::exec::node_into(&OPS[#i], #layer, prepared[#i].as_ref(), &[#(#ins),*], &mut states[#i], #out_time, scratch, &mut rest[0])?;
            }
        });
    }
    // An output that is a model input passed straight through is copied into an extra slot,
    // so every returned view borrows the model, not the caller's input.
    let mut passthrough = Vec::new();
    let outs: Vec<TokenStream> = p
        .outputs
        .iter()
        .map(|o| match p.graph[o.node].op {
            Op::Input { index } => {
                let j = n_nodes + passthrough.len();
                passthrough.push(
                    quote! { ::seqmodel::__private::exec::copy_input(&inputs[#index], &mut values[#j])?; },
                );
                quote! { values[#j][0].view().f32()? }
            }
            _ => {
                let j = pos[&o.node];
                let port = o.port;
                quote! { values[#j][#port].view().f32()? }
            }
        })
        .collect();
    let n_out = outs.len();
    let n_slots = n_nodes + passthrough.len();
    let (ret_ty, view_ty) = output_types(n_out);
    let (ret, owned) = if n_out == 1 {
        (quote! { #(#outs)* }, quote! { out.to_owned() })
    } else {
        let idx = (0..n_out).map(proc_macro2::Literal::usize_unsuffixed);
        (quote! { ( #(#outs),* ) }, quote! { ( #(out.#idx.to_owned()),* ) })
    };
    let mut predict_doc = format!(
        " Runs the model on one batch. Inputs: {}.",
        p.inputs
            .iter()
            .map(|i| format!("`{}`: {} {}", i.name, i.ty.display_keras(&p.symbols, p.batch), i.ty.dtype))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (id, a) in free.iter().zip(&dim_args) {
        predict_doc
            .push_str(&format!(" `{a}`: the size of `{}`, which no input determines.", p.symbols[*id]));
    }
    let direct = direct::plan(p, &order);
    let step = step_tokens(p, &ret, n_slots, direct.as_ref().map(|d| &d.step_one));
    let reset_body = match &direct {
        Some(d) => d.reset.clone(),
        None => quote! {
            for s in &mut self.states {
                *s = ::core::option::Option::None;
            }
        },
    };
    // The generic forward pass serves `run` (without specialised code) and `step_streams`.
    let has_forward = direct.is_none() || (p.is_stateful() && !step.is_empty());
    let reset = if p.is_stateful() {
        quote! {
            /// Forgets the states of every stateful layer (Keras's `reset_states`).
            pub fn reset_states(&mut self) {
                #reset_body
            }

            #step
        }
    } else {
        quote! {}
    };
    let (fields, init, run_body) = match &direct {
        Some(d) => (d.fields.clone(), d.init.clone(), d.run.clone()),
        None => (
            quote! {
                states: ::seqmodel::__private::exec::States,
                workspace: ::seqmodel::__private::exec::Workspace,
            },
            quote! {
                states: ::std::vec![::core::option::Option::None; #n_nodes],
                workspace: ::seqmodel::__private::exec::Workspace::new(#n_slots),
            },
            quote! {
                Self::forward(&self.prepared, &mut self.states, &mut self.workspace, &SIGNATURE, #(#arg_names,)* #(#dim_args),*)?;
                let values = &self.workspace.values;
                ::core::result::Result::Ok(#ret)
            },
        ),
    };
    let forward = has_forward.then(|| {
        quote! {
            /// The forward pass on given states and buffers (the model's own, or a set
            /// of streams'), after checking the inputs against `signature`.
            #[allow(clippy::too_many_arguments)] // the model's inputs, after its context
            fn forward(
                prepared: &[::core::option::Option<::seqmodel::__private::exec::Prepared>],
                states: &mut ::seqmodel::__private::exec::States,
                workspace: &mut ::seqmodel::__private::exec::Workspace,
                signature: &::seqmodel::__private::exec::Signature<'_>,
                #(#view_args),*
            ) -> ::core::result::Result<(), ::seqmodel::RuntimeError> {
                let inputs = [#(::seqmodel::TensorView::from(#arg_names)),*];
                let mut bindings = [::core::option::Option::None; #n_sym];
                ::seqmodel::__private::exec::bind_inputs(signature, &inputs, &mut bindings)?;
                #(#bind_free)*
                let _ = &bindings;
                let values = &mut workspace.values;
                let scratch = &mut workspace.scratch;
                #(#body)*
                #(#passthrough)*
                ::core::result::Result::Ok(())
            }
        }
    });
    quote! {
        #(#[doc = #docs])*
        #[derive(Debug, Clone)]
        pub struct #ident {
            prepared: ::std::vec::Vec<::core::option::Option<::seqmodel::__private::exec::Prepared>>,
            weights: ::seqmodel::WeightStore,
            #fields
        }

        const _: () = {
            const OPS: [::seqmodel::ir::Op; #n_nodes] = [#(#ops),*];
            const SPECS: &[(&str, &[usize])] = &[#(#specs),*];
            const INPUTS: &[::seqmodel::__private::exec::InputSig<'static>] = &[#(#inputs_sig),*];
            const SYMBOLS: &[&str] = &[#(#symbols),*];
            const SIGNATURE: ::seqmodel::__private::exec::Signature<'static> =
                ::seqmodel::__private::exec::Signature { model: #name, inputs: INPUTS, symbols: SYMBOLS, batch: #batch };

            impl #ident {
                /// The model's name in its `.seq` source.
                pub const NAME: &'static str = #name;
                /// Number of weight scalars (Keras's "Total params").
                pub const PARAMS: usize = #params;

                /// The architecture's fingerprint ([`seqmodel::ir::Program::fingerprint`]);
                /// weights saved for another architecture do not load.
                pub const FINGERPRINT: u64 = #fingerprint;

                /// Every weight as `(key, shape)`, in Keras's order.
                pub fn weight_specs() -> &'static [(&'static str, &'static [usize])] {
                    SPECS
                }

                /// Loads weights (every key present, every shape right, every value finite).
                pub fn new(weights: &::seqmodel::WeightStore) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> {
                    Self::from_weights(weights.clone())
                }

                /// [`Self::new`] taking the weights (checked, then packed once; not copied).
                pub fn from_weights(weights: ::seqmodel::WeightStore) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> {
                    weights.check_specs(#name, SPECS)?;
                    weights.check_architecture(#name, Self::FINGERPRINT)?;
                    let std = weights.into_standard_layout();
                    let prepared = ::std::vec![#(#prepare),*];
                    ::core::result::Result::Ok(Self {
                        prepared,
                        weights: std,
                        #init
                    })
                }

                /// Seeded random weights, uniform in ±0.1 (statistics a layer keeps, such as
                /// BatchNormalization's moving variance, start where Keras starts them).
                pub fn random(seed: u64) -> Self {
                    Self::from_weights(::seqmodel::WeightStore::random(&Self::program(), seed, 0.1))
                        .expect("random weights have the model's shapes")
                }

                /// Loads weights from a safetensors file.
                pub fn from_safetensors(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> {
                    Self::from_weights(::seqmodel::WeightStore::load(path.as_ref())?)
                }

                /// Loads weights saved by [`Self::save`] (or `seqc train`): the same as
                /// [`Self::from_safetensors`].
                pub fn load(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> {
                    Self::from_safetensors(path)
                }

                /// Saves the weights as safetensors, tagged with this architecture; an
                /// existing file is an error, never overwritten (see [`Self::save_overwriting`]).
                pub fn save(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<(), ::seqmodel::RuntimeError> {
                    let mut w = self.weights.clone();
                    w.tag(&Self::program());
                    w.save(path.as_ref(), false)
                }

                /// Like [`Self::save`], replacing an existing file (written beside it, then
                /// renamed over it, so a crash leaves the old file or the new one).
                pub fn save_overwriting(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<(), ::seqmodel::RuntimeError> {
                    let mut w = self.weights.clone();
                    w.tag(&Self::program());
                    w.save(path.as_ref(), true)
                }

                ::seqmodel::__private::if_keras! {
                    /// Loads the weights of a Keras `.keras` / `.h5` model with the same architecture
                    /// (matched in Keras's order, every shape checked; exists with seqmodel's
                    /// `keras` feature).
                    pub fn from_keras(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> {
                        Self::from_weights(::seqmodel::__private::load_keras_weights(path.as_ref(), SPECS)?)
                    }
                }

                /// One weight by key (see [`Self::weight_specs`]).
                pub fn weight(&self, key: &str) -> ::core::option::Option<&::seqmodel::ndarray::ArrayD<f32>> {
                    self.weights.get(key)
                }

                /// All weights.
                pub fn weights(&self) -> &::seqmodel::WeightStore {
                    &self.weights
                }

                #[doc = #predict_doc]
                #[allow(clippy::type_complexity)] // a tuple of the declared outputs
                pub fn predict(&mut self, #(#args),*) -> ::core::result::Result<#ret_ty, ::seqmodel::RuntimeError> {
                    let out = self.run(#(#arg_names.view(),)* #(#dim_args),*)?;
                    ::core::result::Result::Ok(#owned)
                }

                /// Like `predict`, on borrowed inputs, returning views into the model's own
                /// buffers: after a first call with the same shapes it allocates nothing.
                #[allow(clippy::type_complexity, clippy::needless_question_mark)] // a tuple of the declared outputs; one `?` per output
                pub fn run<'a>(&'a mut self, #(#view_args),*) -> ::core::result::Result<#view_ty, ::seqmodel::RuntimeError> {
                    #run_body
                }

                #forward

                #reset

                #training
            }
        };
    }
}

/// `step`: one time step of a stateful model with one sequence input `[T, F]` (the seed's
/// generation loop), `[B, F]` in, each output's time axis dropped.
/// Whether a stateful model whose one input is `[time, features]` of `dtype` gets `step` and
/// `run_step`: a float sequence whose length is symbolic or fixed at 1 (the stand-in of a
/// broken model asks the same of its declaration).
pub(crate) fn steps_one_at_a_time(rank: usize, time: Option<usize>, dtype: ir::DType) -> bool {
    dtype == ir::DType::F32 && rank == 2 && time.is_none_or(|n| n == 1)
}

/// A dimension of a declared or inferred type, for the rules that the generated code and the
/// stand-in of a broken model share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeclaredDim<'a> {
    /// A fixed size.
    Fixed(usize),
    /// A dimension symbol (without an offset).
    Sym(&'a str),
    /// Anything else.
    Other,
}

/// The `(F, O)` of `step_one`, for a model of batch 1 whose one input is `[time, F]` and whose
/// one output is `[time, O]` or `[O]` (`F` and `O` fixed): a step is then `F` floats in and
/// `O` floats out, as plain arrays.
pub(crate) fn one_stream_sizes(
    batch: Option<usize>,
    input: &[DeclaredDim<'_>],
    output: &[DeclaredDim<'_>],
) -> Option<(usize, usize)> {
    let [time, DeclaredDim::Fixed(f)] = input else { return None };
    let o = match output {
        [t, DeclaredDim::Fixed(o)] if t == time => *o,
        [DeclaredDim::Fixed(o)] => *o,
        _ => return None,
    };
    (batch == Some(1) && *time != DeclaredDim::Other).then_some((*f, o))
}

/// The signature of `step_one` for `f` floats in and `o` out, followed by its body.
pub(crate) fn step_one_signature(f: usize, o: usize, body: TokenStream) -> TokenStream {
    quote! {
        /// One step of the one stream this model carries (its batch is 1) on plain arrays:
        /// the step's features in, its outputs out (borrowed from the model's buffers).
        /// After the first call it allocates nothing.
        pub fn step_one(&mut self, x: &[f32; #f]) -> ::core::result::Result<&[f32; #o], ::seqmodel::RuntimeError> {
            #body
        }
    }
}

/// The bodies of the stepping methods (the real ones, or the stand-in's).
pub(crate) struct StepBodies {
    /// `step`.
    pub step: TokenStream,
    /// `run_step`.
    pub run_step: TokenStream,
    /// `streams`.
    pub streams: TokenStream,
    /// `step_streams`.
    pub step_streams: TokenStream,
}

/// The signatures of `step`, `run_step`, `streams` and `step_streams` for `n_out` outputs,
/// with their doc comments, each followed by its body.
pub(crate) fn step_signatures(n_out: usize, bodies: StepBodies) -> TokenStream {
    let (ret_ty, view_ty) = output_types(n_out);
    let StepBodies { step, run_step, streams, step_streams } = bodies;
    quote! {
        /// One step of a stateful model: input `[batch, features]`, the state carried over.
        #[allow(clippy::type_complexity)]
        pub fn step(&mut self, x: ::seqmodel::ndarray::ArrayD<f32>) -> ::core::result::Result<#ret_ty, ::seqmodel::RuntimeError> {
            #step
        }

        /// Like `step`, on a borrowed input, returning views into the model's buffers: after
        /// the first call it allocates nothing (the generation loop's fast path).
        #[allow(clippy::type_complexity)]
        pub fn run_step<'a>(&'a mut self, x: ::seqmodel::ndarray::ArrayViewD<'_, f32>) -> ::core::result::Result<#view_ty, ::seqmodel::RuntimeError> {
            #run_step
        }

        /// `n` independent streams of this model, every state zero, for
        /// [`Self::step_streams`].
        pub fn streams(&self, n: usize) -> ::seqmodel::Streams {
            #streams
        }

        /// One step of every stream of `streams`, as one batch: row `i` of `x`
        /// `[streams, features]` is stream `i`'s input, and row `i` of each output its result.
        /// The model is only read: threads may share it, each stepping its own streams
        /// (the declared batch size is the size of the model's own state, not of these).
        /// After the first call with as many streams it allocates nothing.
        #[allow(clippy::type_complexity)]
        pub fn step_streams<'a>(&self, streams: &'a mut ::seqmodel::Streams, x: ::seqmodel::ndarray::ArrayViewD<'_, f32>) -> ::core::result::Result<#view_ty, ::seqmodel::RuntimeError> {
            #step_streams
        }
    }
}

/// `step` and `run_step`, and `streams` and `step_streams` (many streams of the model, one
/// step each, as one batch); `outputs` reads the outputs from `values`, `slots` counts the
/// nodes' output buffers.
fn step_tokens(
    p: &Program,
    outputs: &TokenStream,
    slots: usize,
    direct_step: Option<&TokenStream>,
) -> TokenStream {
    let [input] = p.inputs.as_slice() else { return quote! {} };
    let Some(&t) = input.ty.dims.first() else { return quote! {} };
    if !steps_one_at_a_time(input.ty.dims.len(), t.fixed(), input.ty.dtype) {
        return quote! {};
    }
    let outs = p.output_types();
    let single = outs.len() == 1;
    let pick = |k: usize| {
        if single {
            quote! { out }
        } else {
            let i = proc_macro2::Literal::usize_unsuffixed(k);
            quote! { out.#i }
        }
    };
    let squeeze: Vec<TokenStream> = outs
        .iter()
        .enumerate()
        .map(|(k, ty)| {
            let v = pick(k);
            // The step's own output: the time axis goes (a fixed length of 1 is the time
            // axis only in front of features, so a `[1]` vector stays).
            if ty.dims.first() == Some(&t) && (t.fixed().is_none() || ty.dims.len() >= 2) {
                quote! { #v.index_axis_move(::seqmodel::ndarray::Axis(1), 0) }
            } else {
                quote! { #v }
            }
        })
        .collect();
    let owned: Vec<TokenStream> = (0..outs.len())
        .map(|k| {
            let v = pick(k);
            quote! { #v.to_owned() }
        })
        .collect();
    let (ret, own) = if single {
        (quote! { #(#squeeze)* }, quote! { #(#owned)* })
    } else {
        (quote! { ( #(#squeeze),* ) }, quote! { ( #(#owned),* ) })
    };
    let declared = |d: &Dim| match *d {
        Dim::Fixed(n) => DeclaredDim::Fixed(n),
        Dim::Sym { id, offset: 0 } => DeclaredDim::Sym(&p.symbols[id]),
        Dim::Sym { .. } => DeclaredDim::Other,
    };
    let input_dims: Vec<DeclaredDim<'_>> = input.ty.dims.iter().map(declared).collect();
    let one_stream = match outs.as_slice() {
        [out] => one_stream_sizes(p.batch, &input_dims, &out.dims.iter().map(declared).collect::<Vec<_>>()),
        _ => None,
    };
    let step_one = one_stream.map(|(f, o)| {
        let generic = quote! {
            let out = self.run_step(::seqmodel::__private::exec::row_view(x))?;
            ::seqmodel::__private::exec::as_array(out)
        };
        step_one_signature(f, o, direct_step.cloned().unwrap_or(generic))
    });
    let name = &p.name;
    let input = &input.name;
    let steps = step_signatures(
        outs.len(),
        StepBodies {
            step: quote! {
                let out = self.run_step(x.view())?;
                ::core::result::Result::Ok(#own)
            },
            run_step: quote! {
                let x = ::seqmodel::__private::exec::one_step(&SIGNATURE, x)?;
                let out = self.run(x)?;
                ::core::result::Result::Ok(#ret)
            },
            streams: quote! { ::seqmodel::Streams::new(#name, Self::FINGERPRINT, #slots, n) },
            step_streams: quote! {
                const STREAMS: ::seqmodel::__private::exec::Signature<'static> =
                    ::seqmodel::__private::exec::Signature { batch: ::core::option::Option::None, ..SIGNATURE };
                let x = ::seqmodel::__private::exec::one_step(&STREAMS, x)?;
                let (states, workspace) = streams.for_step(#name, Self::FINGERPRINT, #input, x.shape()[0])?;
                Self::forward(&self.prepared, states, workspace, &STREAMS, x)?;
                let values = &streams.workspace().values;
                let out = #outputs;
                ::core::result::Result::Ok(#ret)
            },
        },
    );
    quote! { #steps #step_one }
}

/// One input of `predict` (owned) or `run` (borrowed).
pub(crate) fn input_arg(name: &str, dtype: ir::DType, borrowed: bool) -> TokenStream {
    let a = format_ident!("{}", name);
    let elem = match dtype {
        ir::DType::F32 => quote! { f32 },
        ir::DType::I32 => quote! { i32 },
    };
    if borrowed {
        quote! { #a: ::seqmodel::ndarray::ArrayViewD<'_, #elem> }
    } else {
        quote! { #a: ::seqmodel::ndarray::ArrayD<#elem> }
    }
}

/// The argument of `predict` for a dimension no input determines: named after the dimension
/// (`n` for `N`), never like an input.
pub(crate) fn dim_arg(sym: &str, id: usize, inputs: &[&str]) -> proc_macro2::Ident {
    let ok = sym.starts_with(|c: char| c.is_ascii_alphabetic())
        && sym.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut name = if ok { sym.to_lowercase() } else { format!("dim{id}") };
    while inputs.contains(&name.as_str()) {
        name.push_str("_dim");
    }
    format_ident!("{}", name)
}

/// The result types of `predict` and `run` (or `step` and `run_step`) for `n` outputs.
pub(crate) fn output_types(n: usize) -> (TokenStream, TokenStream) {
    if n == 1 {
        (quote! { ::seqmodel::ndarray::ArrayD<f32> }, quote! { ::seqmodel::ndarray::ArrayViewD<'a, f32> })
    } else {
        let tys = (0..n).map(|_| quote! { ::seqmodel::ndarray::ArrayD<f32> });
        let vtys = (0..n).map(|_| quote! { ::seqmodel::ndarray::ArrayViewD<'a, f32> });
        (quote! { ( #(#tys),* ) }, quote! { ( #(#vtys),* ) })
    }
}

/// The code of every model of a compiled file.
pub fn file_tokens(c: &crate::Compiled) -> TokenStream {
    let items = c.programs.iter().map(model_tokens);
    quote! { #(#items)* }
}

/// The generated code as formatted Rust source (prettyplease).
pub fn render(c: &crate::Compiled) -> String {
    let tokens = file_tokens(c);
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(f) => prettyplease::unparse(&f),
        Err(_) => tokens.to_string(),
    }
}
