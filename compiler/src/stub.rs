//! The stand-in the `seqmodel!` macro emits for a model that did not check: a type with the
//! whole API the model would have had (read from its declaration), whose bodies can never
//! run because the crate does not compile. Code that uses the model then type-checks, so the
//! only errors the user sees are the model's own, not a cascade of "no method" errors.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use seqmodel_grammar::ast::{self, DTypeAst, DimAst, ExprKind};

use crate::codegen::{
    DeclaredDim, StepBodies, dim_arg, input_arg, lifetimes, one_stream_sizes, out_arg, output_types,
    predict_into_tokens, step_one_signature, step_output_rank, step_signatures, steps_one_at_a_time,
};
use crate::ir::DType;

/// The stand-in type of model `index` of `file`.
pub fn stub_tokens(file: &ast::File, index: usize) -> TokenStream {
    let model = &file.models[index];
    let ident = format_ident!("{}", model.name.name);
    let name = &model.name.name;
    let dead = quote! { ::core::unreachable!("the model did not compile") };
    let inputs: Vec<(&str, DType, usize)> = model
        .params
        .iter()
        .map(|p| {
            let dtype = match p.ty.dtype {
                Some((DTypeAst::I32, _)) => DType::I32,
                _ => DType::F32,
            };
            (p.name.name.as_str(), dtype, p.ty.dims.len() + 1)
        })
        .collect();
    let input_names: Vec<&str> = inputs.iter().map(|(n, ..)| *n).collect();
    let used: HashSet<&str> = model
        .params
        .iter()
        .flat_map(|p| &p.ty.dims)
        .filter_map(|d| match d {
            DimAst::Sym(i, _) => Some(i.name.as_str()),
            DimAst::Fixed(..) => None,
        })
        .collect();
    let dim_names: Vec<String> = model
        .dim_params
        .iter()
        .enumerate()
        .filter(|(_, d)| !used.contains(d.name.as_str()))
        .map(|(id, d)| dim_arg(&d.name, id, &input_names).to_string())
        .collect();
    let mut args: Vec<TokenStream> =
        inputs.iter().enumerate().map(|(k, (n, t, r))| input_arg(n, *t, *r, k)).collect();
    let in_lts = lifetimes("i", inputs.len());
    args.extend(dim_names.iter().map(|a| {
        let a = format_ident!("{}", a);
        quote! { #a: usize }
    }));
    // Undeclared outputs: one, of a rank the stand-in cannot know.
    let out_ranks: Vec<Option<usize>> = match model.outputs.as_deref() {
        Some(outs) if !outs.is_empty() => outs.iter().map(|t| Some(t.dims.len() + 1)).collect(),
        _ => vec![None],
    };
    let (ret_ty, view_ty) = output_types(&out_ranks);
    let taken: Vec<&str> = input_names.iter().copied().chain(dim_names.iter().map(String::as_str)).collect();
    let predict_into = predict_into_tokens(&args, inputs.len(), &out_ranks, &out_arg(&taken), dead.clone());
    let stateful = if is_stateful(file, index, &mut HashSet::new()) {
        let one_sequence = match model.params.as_slice() {
            [p] => {
                let time = match p.ty.dims.first() {
                    Some(DimAst::Fixed(n, _)) => Some(*n),
                    _ => None,
                };
                let (_, dtype, _) = inputs[0];
                steps_one_at_a_time(p.ty.dims.len(), time, dtype)
            }
            _ => false,
        };
        let step = if one_sequence {
            let dead_step = quote! { let _ = x; #dead };
            fn declared(d: &DimAst) -> DeclaredDim<'_> {
                match d {
                    DimAst::Fixed(n, _) => DeclaredDim::Fixed(*n),
                    DimAst::Sym(i, offset) => DeclaredDim::Sym(&i.name, *offset),
                }
            }
            let input: Vec<DeclaredDim<'_>> = model.params[0].ty.dims.iter().map(declared).collect();
            let outputs: Option<Vec<Vec<DeclaredDim<'_>>>> = model
                .outputs
                .as_deref()
                .filter(|o| !o.is_empty())
                .map(|o| o.iter().map(|t| t.dims.iter().map(declared).collect()).collect());
            let step_ranks: Vec<Option<usize>> = match &outputs {
                Some(outs) => outs.iter().map(|o| Some(step_output_rank(input[0], o))).collect(),
                None => vec![None],
            };
            let steps = step_signatures(
                &step_ranks,
                StepBodies {
                    step: dead_step.clone(),
                    run_step: dead_step.clone(),
                    streams: quote! { let _ = n; #dead },
                    step_streams: quote! { let _ = (streams, x); #dead },
                },
            );
            let batch = model.settings.iter().find(|st| st.name.name == "batch").map(|st| st.value);
            let one_stream = match outputs.as_deref() {
                Some([out]) => one_stream_sizes(batch, &input, out),
                _ => None,
            };
            let step_one = one_stream.map(|(f, o)| step_one_signature(f, o, dead_step.clone()));
            quote! { #steps #step_one }
        } else {
            quote! {}
        };
        quote! {
            /// Forgets the states (stand-in: the model did not compile).
            pub fn reset_states(&mut self) { #dead }
            #step
        }
    } else {
        quote! {}
    };
    quote! {
        /// This model did not compile; see the errors above. Its API is declared so that code
        /// using it reports no further errors.
        #[derive(Debug, Clone)]
        pub struct #ident {
            _stand_in: (),
        }

        #[allow(unused_variables, clippy::type_complexity)]
        impl #ident {
            /// The model's name in its `.seq` source.
            pub const NAME: &'static str = #name;
            /// Number of weight scalars (unknown: the model did not compile).
            pub const PARAMS: usize = 0;
            /// The architecture's fingerprint (unknown: the model did not compile).
            pub const FINGERPRINT: u64 = 0;
            /// Every weight as `(key, shape)`.
            pub fn weight_specs() -> &'static [(&'static str, &'static [usize])] { #dead }
            /// Loads weights.
            pub fn new(weights: &::seqmodel::WeightStore) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> { #dead }
            /// Takes weights.
            pub fn from_weights(weights: ::seqmodel::WeightStore) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> { #dead }
            /// Seeded random weights.
            pub fn random(seed: u64) -> Self { #dead }
            /// Loads weights from a safetensors file.
            pub fn from_safetensors(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> { #dead }
            /// Loads saved weights.
            pub fn load(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> { #dead }
            /// Saves the weights.
            pub fn save(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<(), ::seqmodel::RuntimeError> { #dead }
            /// Saves the weights over an existing file.
            pub fn save_overwriting(&self, path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<(), ::seqmodel::RuntimeError> { #dead }
            ::seqmodel::__private::if_keras! {
                /// Loads Keras weights.
                pub fn from_keras(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> { #dead }
            }
            /// One weight by key.
            pub fn weight(&self, key: &str) -> ::core::option::Option<&::seqmodel::ndarray::ArrayD<f32>> { #dead }
            /// All weights.
            pub fn weights(&self) -> &::seqmodel::WeightStore { #dead }
            /// Runs the model.
            pub fn predict<#(#in_lts),*>(&mut self, #(#args),*) -> ::core::result::Result<#ret_ty, ::seqmodel::RuntimeError> { #dead }
            /// Runs the model on views.
            pub fn run<'a, #(#in_lts),*>(&'a mut self, #(#args),*) -> ::core::result::Result<#view_ty, ::seqmodel::RuntimeError> { #dead }
            #predict_into
            #stateful
            /// The program.
            pub fn program() -> ::seqmodel::ir::Program { #dead }
            /// A trainer.
            pub fn trainer(&self, loss: ::seqmodel::train::Loss, optimizer: ::seqmodel::train::Optimizer) -> ::core::result::Result<::seqmodel::train::Trainer, ::seqmodel::RuntimeError> { #dead }
        }
    }
}

/// Whether model `index` or a model it calls has a layer built with `stateful=true`.
fn is_stateful(file: &ast::File, index: usize, seen: &mut HashSet<usize>) -> bool {
    if !seen.insert(index) {
        return false;
    }
    let mut found = false;
    let mut callees = Vec::new();
    for stmt in &file.models[index].body {
        stmt.value().walk(&mut |e| match &e.kind {
            ExprKind::Call { args, .. } => {
                found |= args.iter().any(|a| {
                    a.name.as_ref().is_some_and(|n| n.name == "stateful")
                        && matches!(a.value.kind, ExprKind::Bool(true))
                });
            }
            ExprKind::Name { ident, .. } => callees.push(ident.name.clone()),
            _ => {}
        });
    }
    found
        || callees.iter().any(|c| {
            file.models.iter().position(|m| &m.name.name == c).is_some_and(|i| is_stateful(file, i, seen))
        })
}
