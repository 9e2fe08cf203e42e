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
pub mod embedded;
mod stepped;

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
            let dt = dtype_tokens(t.dtype);
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
    model_tokens_baked(p, None)
}

/// [`model_tokens`], with `baked` weights compiled into the code (checked by
/// [`crate::baked::check_weight_file`]): the type gets a `baked()` constructor that reads
/// no file.
pub fn model_tokens_baked(p: &Program, baked: Option<&crate::baked::BakedWeights>) -> TokenStream {
    let docs = doc_lines(p);
    let baked = baked.map(baked_tokens);
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
        let dt = dtype_tokens(i.ty.dtype);
        let dims = i.ty.dims.iter().map(|d| dim_tokens(*d));
        quote! { ::seqmodel::__private::exec::InputSig { name: #n, dtype: #dt, dims: &[#(#dims),*] } }
    });
    let symbols = &p.symbols;
    let n_sym = p.symbols.len();
    let batch = match p.batch {
        Some(b) => quote! { ::core::option::Option::Some(#b) },
        None => quote! { ::core::option::Option::None },
    };
    // Each input as a rank-typed parameter (batch included).
    let typed_inputs: Vec<(&str, ir::DType, usize)> =
        p.inputs.iter().map(|i| (i.name.as_str(), i.ty.dtype, i.ty.dims.len() + 1)).collect();
    let bind_views = bind_input_views(&typed_inputs);
    // A dimension no input determines is a `usize` argument after the inputs.
    let free = p.free_symbols();
    let input_names: Vec<&str> = p.inputs.iter().map(|i| i.name.as_str()).collect();
    let dim_args: Vec<proc_macro2::Ident> =
        free.iter().map(|&id| dim_arg(&p.symbols[id], id, &input_names)).collect();
    let dim_params: Vec<TokenStream> = dim_args.iter().map(|a| quote! { #a: usize }).collect();
    let mut args: Vec<TokenStream> =
        typed_inputs.iter().enumerate().map(|(k, (n, dtype, rank))| input_arg(n, *dtype, *rank, k)).collect();
    let in_lts = lifetimes("i", typed_inputs.len());
    args.extend(dim_params.iter().cloned());
    // The generic forward pass takes the inputs as dynamic views.
    let mut view_args: Vec<TokenStream> = p
        .inputs
        .iter()
        .map(|i| {
            let (a, elem) = (format_ident!("{}", i.name), elem_type(i.ty.dtype));
            quote! { #a: ::seqmodel::ndarray::ArrayViewD<'_, #elem> }
        })
        .collect();
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
    // Where each output is in the workspace: `(slot, port)`.
    let mut out_slots = Vec::new();
    let outs: Vec<TokenStream> = p
        .outputs
        .iter()
        .map(|o| match p.graph[o.node].op {
            Op::Input { index } => {
                let j = n_nodes + passthrough.len();
                out_slots.push(quote! { (#j, 0usize) });
                passthrough.push(
                    quote! { ::seqmodel::__private::exec::copy_input(&inputs[#index], &mut values[#j])?; },
                );
                quote! { ::seqmodel::__private::exec::typed(values[#j][0].view().f32()?)? }
            }
            _ => {
                let j = pos[&o.node];
                let port = o.port;
                out_slots.push(quote! { (#j, #port) });
                quote! { ::seqmodel::__private::exec::typed(values[#j][#port].view().f32()?)? }
            }
        })
        .collect();
    let n_out = outs.len();
    let n_slots = n_nodes + passthrough.len();
    let out_ranks: Vec<Option<usize>> = p.output_types().iter().map(|t| Some(t.dims.len() + 1)).collect();
    let (ret_ty, view_ty) = output_types(&out_ranks);
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
    let dim_names: Vec<String> = dim_args.iter().map(ToString::to_string).collect();
    let taken: Vec<&str> = input_names.iter().copied().chain(dim_names.iter().map(String::as_str)).collect();
    let out = out_arg(&taken);
    let writes = if n_out == 1 {
        quote! { ::seqmodel::__private::exec::write_output(#name, 0, y, #out.into()) }
    } else {
        let parts: Vec<_> = (0..n_out).map(|k| format_ident!("{}{}", out, k)).collect();
        let idx = (0..n_out).map(proc_macro2::Literal::usize_unsuffixed);
        let ks = 0..n_out;
        quote! {
            let ( #(#parts),* ) = #out;
            #( ::seqmodel::__private::exec::write_output(#name, #ks, y.#idx, #parts.into())?; )*
            ::core::result::Result::Ok(())
        }
    };
    let predict_into = predict_into_tokens(
        &args,
        p.inputs.len(),
        &out_ranks,
        &out,
        quote! {
            let y = self.run(#(#arg_names,)* #(#dim_args),*)?;
            #writes
        },
    );
    let direct = direct::plan(p, &order);
    let out_slots = quote! { &[#(#out_slots),*] };
    let step = step_tokens(p, &ret, &out_slots, n_slots, direct.as_ref().map(|d| &d.step_one));
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

                #baked

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
                pub fn predict<#(#in_lts),*>(&mut self, #(#args),*) -> ::core::result::Result<#ret_ty, ::seqmodel::RuntimeError> {
                    let out = self.run(#(#arg_names,)* #(#dim_args),*)?;
                    ::core::result::Result::Ok(#owned)
                }

                #predict_into

                /// Like `predict`, on borrowed inputs, returning views into the model's own
                /// buffers: after a first call with the same shapes it allocates nothing.
                #[allow(clippy::type_complexity, clippy::needless_question_mark)] // a tuple of the declared outputs; one `?` per output
                pub fn run<'a, #(#in_lts),*>(&'a mut self, #(#args),*) -> ::core::result::Result<#view_ty, ::seqmodel::RuntimeError> {
                    #bind_views
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
    /// A dimension symbol plus an offset (`T`, `T - 2`).
    Sym(&'a str, i64),
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
    let plain = !matches!(time, DeclaredDim::Sym(_, offset) if *offset != 0);
    (batch == Some(1) && plain).then_some((*f, o))
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

/// The rank (batch included) of a step's output: that of the output `[time, …]` or `[…]` of
/// a model whose input is `[time, F]`, less the time axis, which a step drops (a fixed length
/// of 1 is the time axis only in front of features, so a `[1]` vector stays).
pub(crate) fn step_output_rank(time: DeclaredDim<'_>, output: &[DeclaredDim<'_>]) -> usize {
    output.len() + 1 - usize::from(step_drops_time(time, output))
}

/// Whether a step drops the first axis of `output` (see [`step_output_rank`]).
pub(crate) fn step_drops_time(time: DeclaredDim<'_>, output: &[DeclaredDim<'_>]) -> bool {
    output.first() == Some(&time) && (!matches!(time, DeclaredDim::Fixed(_)) || output.len() >= 2)
}

/// The signatures of `step`, `run_step`, `streams` and `step_streams` for outputs of these
/// ranks (a step's, batch included), with their doc comments, each followed by its body.
pub(crate) fn step_signatures(ranks: &[Option<usize>], bodies: StepBodies) -> TokenStream {
    let (ret_ty, view_ty) = output_types(ranks);
    let x_ty = quote! { impl ::seqmodel::ndarray::AsArray<'x, f32, ::seqmodel::ndarray::Ix2> };
    let StepBodies { step, run_step, streams, step_streams } = bodies;
    quote! {
        /// One step of a stateful model: input `[batch, features]`, the state carried over.
        #[allow(clippy::type_complexity)]
        pub fn step<'x>(&mut self, x: #x_ty) -> ::core::result::Result<#ret_ty, ::seqmodel::RuntimeError> {
            #step
        }

        /// Like `step`, on a borrowed input, returning views into the model's buffers: after
        /// the first call it allocates nothing (the generation loop's fast path).
        #[allow(clippy::type_complexity)]
        pub fn run_step<'a, 'x>(&'a mut self, x: #x_ty) -> ::core::result::Result<#view_ty, ::seqmodel::RuntimeError> {
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
        pub fn step_streams<'a, 'x>(&self, streams: &'a mut ::seqmodel::Streams, x: #x_ty) -> ::core::result::Result<#view_ty, ::seqmodel::RuntimeError> {
            #step_streams
        }
    }
}

/// `step` and `run_step`, and `streams` and `step_streams` (many streams of the model, one
/// step each, as one batch); `outputs` reads the outputs from `values`, `out_slots` lists
/// where they are (`(slot, port)`), `slots` counts the nodes' output buffers.
fn step_tokens(
    p: &Program,
    outputs: &TokenStream,
    out_slots: &TokenStream,
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
    let run_ranks: Vec<Option<usize>> = outs.iter().map(|t| Some(t.dims.len() + 1)).collect();
    let (_, run_view_ty) = output_types(&run_ranks);
    let pick = |k: usize| {
        if single {
            quote! { out }
        } else {
            let i = proc_macro2::Literal::usize_unsuffixed(k);
            quote! { out.#i }
        }
    };
    let declared = |d: &Dim| match *d {
        Dim::Fixed(n) => DeclaredDim::Fixed(n),
        Dim::Sym { id, offset } => DeclaredDim::Sym(&p.symbols[id], offset),
    };
    let time = declared(&t);
    let out_dims: Vec<Vec<DeclaredDim<'_>>> =
        outs.iter().map(|ty| ty.dims.iter().map(declared).collect()).collect();
    let ranks: Vec<Option<usize>> = out_dims.iter().map(|d| Some(step_output_rank(time, d))).collect();
    let squeeze: Vec<TokenStream> = out_dims
        .iter()
        .enumerate()
        .map(|(k, dims)| {
            let v = pick(k);
            if step_drops_time(time, dims) {
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
    let input_dims: Vec<DeclaredDim<'_>> = input.ty.dims.iter().map(declared).collect();
    let one_stream = match out_dims.as_slice() {
        [out] => one_stream_sizes(p.batch, &input_dims, out),
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
        &ranks,
        StepBodies {
            step: quote! {
                let out = self.run_step(x)?;
                ::core::result::Result::Ok(#own)
            },
            run_step: quote! {
                let x: ::seqmodel::ndarray::ArrayView2<'_, f32> = x.into();
                let out = self.run(x.insert_axis(::seqmodel::ndarray::Axis(1)))?;
                ::core::result::Result::Ok(#ret)
            },
            streams: quote! { ::seqmodel::Streams::new(#name, Self::FINGERPRINT, #slots, n) },
            step_streams: quote! {
                const STREAMS: ::seqmodel::__private::exec::Signature<'static> =
                    ::seqmodel::__private::exec::Signature { batch: ::core::option::Option::None, ..SIGNATURE };
                let x: ::seqmodel::ndarray::ArrayView2<'_, f32> = x.into();
                let x = x.insert_axis(::seqmodel::ndarray::Axis(1)).into_dyn();
                // The weight count is the multiply-adds per stream and step of dense and
                // recurrent layers: what decides whether the streams split across threads.
                streams.step(#name, Self::FINGERPRINT, #input, x, Self::PARAMS, #out_slots, |states, workspace, x| {
                    Self::forward(&self.prepared, states, workspace, &STREAMS, x)
                })?;
                let values = &streams.workspace().values;
                let out: #run_view_ty = #outputs;
                ::core::result::Result::Ok(#ret)
            },
        },
    );
    quote! { #steps #step_one }
}

/// The dimension type of a rank-`rank` array (batch included): `Ix1` … `Ix6`, or `IxDyn`
/// above (ndarray's fixed ranks end at 6) or when the rank is not known (`None`: the
/// stand-in of a broken model whose outputs are not declared).
pub(crate) fn dim_type(rank: Option<usize>) -> TokenStream {
    let ix = format_ident!("{}", rank.map_or_else(|| "IxDyn".into(), dim_type_name));
    quote! { ::seqmodel::ndarray::#ix }
}

/// The name of ndarray's dimension type for arrays of rank `rank` (batch included) in the
/// generated API: `Ix1` … `Ix6`, `IxDyn` above (for code that writes calls to it as text).
pub fn dim_type_name(rank: usize) -> String {
    if rank <= 6 { format!("Ix{rank}") } else { "IxDyn".into() }
}

/// Input `index` of `predict`, `run` and `predict_into`, of rank `rank` (batch included): any
/// array or view of that rank (`&Array3<f32>`, `ArrayView3<f32>`, …), borrowed for
/// [`lifetime`]`("i", index)`.
pub(crate) fn input_arg(name: &str, dtype: ir::DType, rank: usize, index: usize) -> TokenStream {
    let a = format_ident!("{}", name);
    let (elem, d, lt) = (elem_type(dtype), dim_type(Some(rank)), lifetime("i", index));
    quote! { #a: impl ::seqmodel::ndarray::AsArray<#lt, #elem, #d> }
}

/// The lifetime `'{prefix}{index}` (an `impl Trait` argument's lifetime must be named).
pub(crate) fn lifetime(prefix: &str, index: usize) -> syn::Lifetime {
    syn::Lifetime::new(&format!("'{prefix}{index}"), proc_macro2::Span::call_site())
}

/// The lifetimes `'{prefix}0 .. '{prefix}{n - 1}`.
pub(crate) fn lifetimes(prefix: &str, n: usize) -> Vec<syn::Lifetime> {
    (0..n).map(|k| lifetime(prefix, k)).collect()
}

/// The element type of `dtype` (booleans are held as floats 0 and 1).
fn elem_type(dtype: ir::DType) -> TokenStream {
    match dtype {
        ir::DType::F32 | ir::DType::Bool => quote! { f32 },
        ir::DType::I32 => quote! { i32 },
    }
}

/// `::seqmodel::ir::DType::…` for `dtype`.
fn dtype_tokens(dtype: ir::DType) -> TokenStream {
    match dtype {
        ir::DType::F32 => quote! { ::seqmodel::ir::DType::F32 },
        ir::DType::I32 => quote! { ::seqmodel::ir::DType::I32 },
        ir::DType::Bool => quote! { ::seqmodel::ir::DType::Bool },
    }
}

/// The statements that turn each typed input argument into the dynamic view the runtime
/// checks and reads (the check of its sizes is the runtime's, at the API boundary).
pub(crate) fn bind_input_views(inputs: &[(&str, ir::DType, usize)]) -> TokenStream {
    let binds = inputs.iter().map(|(name, dtype, rank)| {
        let a = format_ident!("{}", name);
        let (elem, d) = (elem_type(*dtype), dim_type(Some(*rank)));
        quote! {
            let #a: ::seqmodel::ndarray::ArrayView<'_, #elem, #d> = #a.into();
            let #a = #a.into_dyn();
        }
    });
    quote! { #(#binds)* }
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

/// The result types of `predict` and `run` (or `step` and `run_step`) for outputs of these
/// ranks (batch included): owned arrays and views into the model's buffers.
pub(crate) fn output_types(ranks: &[Option<usize>]) -> (TokenStream, TokenStream) {
    let owned = ranks.iter().map(|r| {
        let d = dim_type(*r);
        quote! { ::seqmodel::ndarray::Array<f32, #d> }
    });
    let views = ranks.iter().map(|r| {
        let d = dim_type(*r);
        quote! { ::seqmodel::ndarray::ArrayView<'a, f32, #d> }
    });
    if ranks.len() == 1 {
        (quote! { #(#owned)* }, quote! { #(#views)* })
    } else {
        (quote! { ( #(#owned),* ) }, quote! { ( #(#views),* ) })
    }
}

/// `predict_into`: the model run on typed inputs, its outputs written into the caller's
/// arrays (`out`, a tuple for several outputs), each checked for its shape.
pub(crate) fn predict_into_tokens(
    args: &[TokenStream],
    n_inputs: usize,
    ranks: &[Option<usize>],
    out: &proc_macro2::Ident,
    body: TokenStream,
) -> TokenStream {
    let bufs = ranks.iter().enumerate().map(|(k, r)| {
        let (d, lt) = (dim_type(*r), lifetime("o", k));
        quote! { impl ::core::convert::Into<::seqmodel::ndarray::ArrayViewMut<#lt, f32, #d>> }
    });
    let lts = lifetimes("i", n_inputs).into_iter().chain(lifetimes("o", ranks.len()));
    let out_ty = if ranks.len() == 1 {
        quote! { #(#bufs)* }
    } else {
        quote! { ( #(#bufs),* ) }
    };
    quote! {
        /// Like `predict`, writing the outputs into the caller's arrays (a tuple of them for
        /// several outputs), whose shapes must be the outputs' own; after a first call with
        /// the same shapes it allocates nothing.
        #[allow(clippy::type_complexity)] // a tuple of the declared outputs
        pub fn predict_into<#(#lts),*>(&mut self, #(#args,)* #out: #out_ty) -> ::core::result::Result<(), ::seqmodel::RuntimeError> {
            #body
        }
    }
}

/// The name of `predict_into`'s output argument: `out`, unless an input has that name.
pub(crate) fn out_arg(inputs: &[&str]) -> proc_macro2::Ident {
    let mut name = String::from("out");
    while inputs.contains(&name.as_str()) {
        name.push('_');
    }
    format_ident!("{}", name)
}

/// The `baked()` constructor of a model whose weights are compiled in.
fn baked_tokens(b: &crate::baked::BakedWeights) -> TokenStream {
    let path = b.path.to_string_lossy().into_owned();
    let doc = format!(
        " This model with the weights of `{}`, compiled into the program (checked against the \
         weight table when the model was compiled): no file is read.",
        b.shown
    );
    quote! {
        /// The safetensors bytes baked into this model (see [`Self::baked`]).
        pub const BAKED_WEIGHTS: &'static [u8] = ::core::include_bytes!(#path);

        #[doc = #doc]
        pub fn baked() -> Self {
            ::seqmodel::WeightStore::from_safetensors(Self::BAKED_WEIGHTS)
                .and_then(Self::from_weights)
                .expect("the baked weights were checked when the model was compiled")
        }
    }
}

/// The code of every model of a compiled file.
pub fn file_tokens(c: &crate::Compiled) -> TokenStream {
    file_tokens_baked(c, None)
}

/// [`file_tokens`], with `baked` weights compiled into the file's main model (its last).
pub fn file_tokens_baked(c: &crate::Compiled, baked: Option<&crate::baked::BakedWeights>) -> TokenStream {
    let last = c.programs.len().saturating_sub(1);
    let items =
        c.programs.iter().enumerate().map(|(i, p)| model_tokens_baked(p, baked.filter(|_| i == last)));
    quote! { #(#items)* }
}

/// The generated code as formatted Rust source (prettyplease).
pub fn render(c: &crate::Compiled) -> String {
    render_baked(c, None)
}

/// [`render`], with `baked` weights compiled into the file's main model.
pub fn render_baked(c: &crate::Compiled, baked: Option<&crate::baked::BakedWeights>) -> String {
    let tokens = file_tokens_baked(c, baked);
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(f) => prettyplease::unparse(&f),
        Err(_) => tokens.to_string(),
    }
}
