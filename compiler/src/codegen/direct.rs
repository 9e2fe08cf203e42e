//! Specialised `run` bodies: for a model made of recurrent, Dense and activation layers on
//! float inputs (no masks), each node is a typed field of the model (`RnnNode`, `DenseNode`,
//! …) called directly on the previous node's buffer with its attributes and every fixed size
//! as literals. The inputs are checked once, at the API boundary; there is no `match` over
//! `Op`, no `IxDyn` shape and no per-node check on the hot path. Other models keep the
//! generic body (one `exec::node_into` call per node).

use std::collections::HashMap;

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::stepped::StepKind;
use super::{act, rnn_attrs};
use crate::ir::{self, Dim, NodeIndex, Op, Program};

/// What a model's specialised code adds: the fields of its nodes and the body of `run`.
pub(super) struct Direct {
    /// The field declarations (`nodes`, `input_rows`).
    pub fields: TokenStream,
    /// Their initial values.
    pub init: TokenStream,
    /// The body of `run`, returning its outputs (the model's inputs are bound by name).
    pub run: TokenStream,
    /// The body of `reset_states`.
    pub reset: TokenStream,
    /// The body of `step_one` (`x: &[f32; F]` in, `&[f32; O]` out) for a model that has it:
    /// the nodes run on the caller's array as a batch of one step, no array view made.
    pub step_one: TokenStream,
}

/// The most nodes with buffers that specialised code holds: they are one tuple field, and
/// `Debug`, `Clone` and `Default` exist for tuples of up to 12.
const MAX_NODES: usize = 12;

/// Where a node's output is: a node's buffer (by field index) or a model input's rows.
#[derive(Clone)]
enum Source {
    Node(TokenStream),
    Input(usize),
}

/// The specialised code of `p` (already optimised for inference, nodes in `order`), or
/// `None` when one of its nodes has no direct form.
pub(super) fn plan(p: &Program, order: &[NodeIndex]) -> Option<Direct> {
    let bound = |d: &Dim| match *d {
        Dim::Fixed(_) => true,
        Dim::Sym { id, offset } => offset == 0 && !p.is_derived_symbol(id),
    };
    if !p.free_symbols().is_empty()
        || p.inputs.iter().any(|i| i.ty.dtype != ir::DType::F32)
        || p.types.values().flatten().any(|t| !t.dims.iter().all(bound))
        || p.outputs.iter().any(|o| o.port != 0)
    {
        return None;
    }
    let size = |d: &Dim| match *d {
        Dim::Fixed(n) => quote! { #n },
        Dim::Sym { id, .. } => {
            let s = format_ident!("s{}", id);
            quote! { #s }
        }
    };
    // The element count of `dims` over the batch: the fixed sizes folded into one factor
    // (none when it is 1), then each symbol.
    let elements = |dims: &[Dim]| {
        let fixed: usize = dims.iter().filter_map(|d| d.fixed()).product();
        let fixed = (fixed != 1).then(|| quote! { * #fixed });
        let syms = dims.iter().filter(|d| d.fixed().is_none()).map(size);
        quote! { batch #fixed #(* #syms)* }
    };
    let mut at: HashMap<NodeIndex, (Source, Vec<Dim>)> = HashMap::new();
    let (mut fields, mut body, mut reset) = (Vec::new(), Vec::new(), Vec::new());
    // The field of each node with buffers, by its position in `order`.
    let mut field_of: HashMap<usize, Literal> = HashMap::new();
    // Whether a recurrent layer needs the work buffers (one set for all of them).
    let mut recurrent = false;
    let private = quote! { ::seqmodel::__private::direct };
    for (i, n) in order.iter().enumerate() {
        let node = &p.graph[*n];
        let out_dims = p.types[n].first()?.dims.clone();
        if let Op::Input { index } = node.op {
            at.insert(*n, (Source::Input(index), out_dims));
            continue;
        }
        let [src] = p.node_inputs(*n)[..] else { return None };
        if src.port != 0 || p.types[n].len() != 1 {
            return None;
        }
        let (from, in_dims) = at.get(&src.node)?.clone();
        let x = match &from {
            Source::Node(v) => v.clone(),
            Source::Input(k) => {
                let v = format_ident!("input{}", k);
                quote! { #v }
            }
        };
        let field = Literal::usize_unsuffixed(fields.len());
        field_of.insert(i, field.clone());
        let v = format_ident!("v{}", i);
        let layer = &node.layer;
        let prepared = quote! { self.prepared[#i].as_ref() };
        match &node.op {
            // A recurrent layer over a sequence, or over one vector repeated (RepeatVector → RNN).
            Op::Rnn(a) | Op::RepeatRnn { rnn: a, .. } if !a.return_state => {
                let (method, t) = match (&node.op, &in_dims[..]) {
                    (Op::Rnn(_), [t, _]) => (quote! { run }, size(t)),
                    (Op::RepeatRnn { steps, .. }, [_]) if bound(steps) => {
                        (quote! { run_repeated }, size(steps))
                    }
                    _ => return None,
                };
                let attrs = rnn_attrs(a);
                recurrent = true;
                fields.push(quote! { #private::RnnNode });
                body.push(quote! {
                    let #v = nodes.#field.#method(#layer, &#attrs, #prepared, #x, (batch, #t), &mut self.rnn_scratch)?;
                });
                if a.stateful {
                    reset.push(quote! { self.nodes.#field.reset(); });
                }
            }
            Op::Dense { units, activation, .. } => {
                let (rows, a) = (elements(&in_dims[..in_dims.len().checked_sub(1)?]), act(*activation));
                fields.push(quote! { #private::DenseNode });
                body.push(quote! {
                    let #v = nodes.#field.run(#layer, (#units, #a), #prepared, #x, #rows)?;
                });
            }
            // Identities at inference alias their input (a model input is copied, so that
            // every output borrows the model).
            Op::Dropout { .. } | Op::Activation(ir::Activation::Linear)
                if matches!(from, Source::Node(_)) =>
            {
                at.insert(*n, (from, out_dims));
                continue;
            }
            Op::Activation(_) | Op::Dropout { .. } => {
                let a = match node.op {
                    Op::Activation(a) => a,
                    _ => ir::Activation::Linear,
                };
                let (len, width, a) = (elements(&in_dims), size(in_dims.last()?), act(a));
                fields.push(quote! { #private::MapNode });
                body.push(quote! { let #v = nodes.#field.run(#a, #x, #len, #width); });
            }
            _ => return None,
        }
        at.insert(*n, (Source::Node(quote! { #v }), out_dims));
    }
    if fields.len() > MAX_NODES {
        return None;
    }
    let outs: Vec<TokenStream> = p
        .outputs
        .iter()
        .map(|o| match at.get(&o.node) {
            // The shape as an array (a rank-typed view) up to ndarray's fixed ranks, else a slice.
            Some((Source::Node(v), dims)) => {
                let ds = dims.iter().map(size);
                let shape = if dims.len() < 6 {
                    quote! { [batch #(, #ds)*] }
                } else {
                    quote! { &[batch #(, #ds)*][..] }
                };
                Some(quote! { #private::output_view(#v, #shape)? })
            }
            _ => None,
        })
        .collect::<Option<_>>()?;
    let ret = if outs.len() == 1 {
        quote! { #(#outs)* }
    } else {
        quote! { ( #(#outs),* ) }
    };
    // `step_one`: one model input, one output (see `super::one_stream_sizes`), one step of
    // batch 1: every symbol (the time) is 1.
    let last = match at.get(&p.outputs[0].node) {
        Some((Source::Node(v), _)) => v.clone(),
        _ => return None,
    };
    let ones = (0..p.symbols.len()).map(|id| {
        let s = format_ident!("s{}", id);
        quote! { #[allow(unused_variables)] let #s = 1usize; }
    });
    let input = &p.inputs[0].name;
    let step_one = match fused_step_one(p, &field_of) {
        Some(fused) => fused,
        None => quote! {
            ::seqmodel::__private::exec::check_finite(#input, x)?;
            let batch = 1usize;
            #(#ones)*
            let input0: &[f32] = x;
            let nodes = &mut self.nodes;
            #(#body)*
            #private::array(#last)
        },
    };
    let names: Vec<_> = p.inputs.iter().map(|i| format_ident!("{}", i.name)).collect();
    let rows: Vec<_> = (0..p.inputs.len()).map(|k| format_ident!("input{}", k)).collect();
    let buffers: Vec<_> = (0..p.inputs.len()).map(|k| format_ident!("rows{}", k)).collect();
    let n_in = p.inputs.len();
    let n_sym = p.symbols.len();
    let syms: Vec<TokenStream> = (0..n_sym)
        .map(|id| {
            let s = format_ident!("s{}", id);
            quote! { #[allow(unused_variables)] let #s = bindings[#id].unwrap_or_default(); }
        })
        .collect();
    let first = &names[0];
    let (scratch_field, scratch_init) = if recurrent {
        (
            quote! { rnn_scratch: #private::RnnScratch, },
            quote! { rnn_scratch: ::core::default::Default::default(), },
        )
    } else {
        (quote! {}, quote! {})
    };
    Some(Direct {
        fields: quote! {
            nodes: ( #(#fields,)* ),
            #scratch_field
            input_rows: [::std::vec::Vec<f32>; #n_in],
        },
        init: quote! {
            nodes: ::core::default::Default::default(),
            #scratch_init
            input_rows: ::core::array::from_fn(|_| ::std::vec::Vec::new()),
        },
        run: quote! {
            let inputs = [#(::seqmodel::TensorView::from(#names.view())),*];
            let mut bindings = [::core::option::Option::None; #n_sym];
            ::seqmodel::__private::exec::bind_inputs(&SIGNATURE, &inputs, &mut bindings)?;
            #(#syms)*
            let batch = #first.shape()[0];
            let [#(#buffers),*] = &mut self.input_rows;
            #(#[allow(unused_variables)] let #rows = #private::input_rows(&#names, #buffers);)*
            let nodes = &mut self.nodes;
            #(#body)*
            ::core::result::Result::Ok(#ret)
        },
        reset: quote! { #(#reset)* },
        step_one,
    })
}

/// The body of `step_one` for a model the step kernels run ([`super::stepped`]): each node's
/// weights and buffers are taken from its field (`field_of`) and the whole step runs in one
/// SIMD dispatch, as the `no_std` code's does; `None` for another model.
fn fused_step_one(p: &Program, field_of: &HashMap<usize, Literal>) -> Option<TokenStream> {
    let stepped = super::stepped::stepped(p).ok().filter(|s| s.window.is_none())?;
    let private = quote! { ::seqmodel::__private::direct };
    let step = quote! { ::seqmodel::__private::embedded::step };
    let (mut parts, mut members, mut types, mut calls) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for l in &stepped.layers {
        let field = field_of.get(&l.index)?;
        let (w, b) = (format_ident!("w{}", l.index), format_ident!("b{}", l.index));
        let layer = l.layer;
        let i = l.index;
        let prepared = quote! { prepared[#i].as_ref() };
        match &l.kind {
            StepKind::Recurrent { attrs, .. } => {
                let attrs = rnn_attrs(attrs);
                parts.push(quote! { let (#w, #b) = nodes.#field.step_parts(#layer, &#attrs, #prepared)?; });
                types.push(quote! { #w: #step::RecurrentWeights<'a>, #b: #private::RnnStepParts<'a>, });
                members.push(quote! { #w, #b, });
            }
            StepKind::Dense { units, .. } => {
                parts.push(quote! { let (#w, #b) = nodes.#field.step_parts(#layer, #units, #prepared)?; });
                types.push(quote! { #w: #private::DenseWeights<'a>, #b: &'a mut [f32], });
                members.push(quote! { #w, #b, });
            }
            StepKind::Map { width, .. } => {
                parts.push(quote! { let #b = nodes.#field.step_buffer(#width); });
                types.push(quote! { #b: &'a mut [f32], });
                members.push(quote! { #b, });
            }
        }
        let x = match l.from {
            Some(j) => {
                let from = stepped.layers.iter().find(|k| k.index == j)?;
                let (src, n) = (format_ident!("b{}", j), from.kind.width());
                match from.kind {
                    StepKind::Recurrent { .. } => quote! { &#src.h[..#n] },
                    _ => quote! { &#src[..#n] },
                }
            }
            None => {
                let f = stepped.f;
                quote! { &input[..#f] }
            }
        };
        let recurrent = matches!(l.kind, StepKind::Recurrent { .. });
        // Every length as a literal (the weights were checked when they were loaded), so
        // that the kernels inlined into the step know their loops' trip counts, as in the
        // `no_std` code.
        let len = |part: &str| l.kind.len(part);
        let weight = |part: &str| {
            let (field, n) = (format_ident!("{}", part), len(part));
            match part {
                "width" => quote! { (if W == 0 { #w.width } else { W }) },
                "bias" | "recurrent_bias" => quote! { #w.#field.map(|v| &v[..#n]) },
                _ => quote! { &#w.#field[..#n] },
            }
        };
        let buffer = |part: &str| {
            let (field, n) = (format_ident!("{}", part), len(part));
            if recurrent {
                quote! { &mut #b.#field[..#n] }
            } else {
                quote! { &mut #b[..#n] }
            }
        };
        calls.push(super::stepped::kernel_call(l, x, &weight, &buffer));
    }
    let out = field_of.get(&stepped.output)?;
    let input = &p.inputs[0].name;
    // The model has the recurrence's work buffers (and their direction) only with a recurrent layer.
    let turn = if stepped.layers.iter().any(|l| matches!(l.kind, StepKind::Recurrent { .. })) {
        quote! { self.rnn_scratch.turn() }
    } else {
        quote! { false }
    };
    // The weights' column-block width as a constant where it is the baked one (AVX-512's),
    // else read from the weights (`W` 0).
    let widths: Vec<TokenStream> = stepped
        .layers
        .iter()
        .filter(|l| !matches!(l.kind, StepKind::Map { .. }))
        .map(|l| {
            let w = format_ident!("w{}", l.index);
            quote! { #w.width == #step::BAKED_WIDTH }
        })
        .collect();
    // Activation layers only: no weights, no width. (No `true && …` either way: the
    // generated code passes the user's clippy.)
    let dispatch = if widths.is_empty() {
        quote! { arch.dispatch(Step::<0> { input: x, backwards, #(#members)* }); }
    } else {
        quote! {
            if #(#widths)&&* {
                arch.dispatch(Step::<{ #step::BAKED_WIDTH }> { input: x, backwards, #(#members)* });
            } else {
                arch.dispatch(Step::<0> { input: x, backwards, #(#members)* });
            }
        }
    };
    Some(quote! {
        ::seqmodel::__private::exec::check_finite(#input, x)?;
        let nodes = &mut self.nodes;
        let prepared = &self.prepared;
        let backwards = #turn;
        #(#parts)*
        /// The model's step with the instruction set `S`, the weights in column blocks of `W`
        /// (0: of their own width).
        struct Step<'a, const W: usize> {
            input: &'a [f32],
            backwards: bool,
            #(#types)*
        }
        impl<const W: usize> ::seqmodel::__private::embedded::pulp::WithSimd for Step<'_, W> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: ::seqmodel::__private::embedded::pulp::Simd>(self, s: S) {
                let Step { input, backwards, #(#members)* } = self;
                #(#calls)*
            }
        }
        let arch = ::seqmodel::__private::embedded::pulp::Arch::new();
        #dispatch
        #private::array(nodes.#out.step_output())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the (first) model of `src` gets specialised code.
    fn specialised(src: &str) -> bool {
        let c = crate::compile(src).unwrap_or_else(|e| panic!("{}", e.render("t", src, false)));
        let mut p = c.programs[0].clone();
        ir::passes::for_inference(&mut p);
        plan(&p, &p.topo_order()).is_some()
    }

    #[test]
    fn recurrent_dense_and_activation_chains_are_specialised() {
        for src in [
            "model M(x: [T, 8]) -> [T, 8] where batch = 1 { x -> LSTM(64, stateful=true, return_sequences=true) -> TimeDistributed(Dense(8)) }",
            "model M(x: [T, 3]) -> [2] { x -> GRU(4, return_sequences=true, go_backwards=true) -> SimpleRNN(5) -> Dropout(0.5) -> Dense(2, activation=\"softmax\") }",
            "model M(x: [4]) -> [2] { x -> Dense(3, activation=\"tanh\") -> Activation(\"relu\") -> Dense(2) }",
            "model M(x: [5, 3]) -> [5, 2] { x -> GRU(2, reset_after=false, return_sequences=true) }",
            "model M(x: [T, 3]) -> [T, 2] { x -> LSTM(4) -> RepeatVector(T) -> LSTM(2, return_sequences=true) }",
        ] {
            assert!(specialised(src), "{src}");
        }
    }

    /// Masks, states as outputs or inputs, layers without a direct form and dimensions the
    /// inputs do not give keep the generic code.
    #[test]
    fn everything_else_keeps_the_generic_code() {
        for src in [
            "model M(x: [T, 3]) -> [4] { x -> Masking() -> LSTM(4) }",
            "model M(x: [T, 3]) -> ([4], [4], [4]) { o, h, c = LSTM(4, return_state=true)(x); (o, h, c) }",
            "model M(x: [T, 3]) -> [T, 8] { x -> Bidirectional(LSTM(4, return_sequences=true)) }",
            "model M(w: [T] of i32) -> [T, 4] { w -> Embedding(9, 4) }",
            "model M<T>(z: [3]) -> [T, 2] { z -> RepeatVector(T) -> SimpleRNN(2, return_sequences=true) }",
            "model M(x: [T, 2]) -> [T, 2] { x }",
            // More nodes than one tuple holds.
            &format!("model M(x: [4]) -> [4] {{ x {} }}", "-> Dense(4) ".repeat(13)),
        ] {
            assert!(!specialised(src), "{src}");
        }
    }
}
