//! The stand-in the `seqmodel!` macro emits for a model that did not check: a type with the
//! whole API the model would have had (read from its declaration), whose bodies can never
//! run because the crate does not compile. Code that uses the model then type-checks, so the
//! only errors the user sees are the model's own, not a cascade of "no method" errors.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use seqmodel_grammar::ast::{self, DTypeAst, DimAst, ExprKind};

use crate::codegen::{
    DeclaredDim, StepBodies, dim_arg, input_arg, one_stream_sizes, output_types, step_one_signature,
    step_signatures, steps_one_at_a_time,
};
use crate::ir::DType;

/// The stand-in type of model `index` of `file`.
pub fn stub_tokens(file: &ast::File, index: usize) -> TokenStream {
    let model = &file.models[index];
    let ident = format_ident!("{}", model.name.name);
    let name = &model.name.name;
    let dead = quote! { ::core::unreachable!("the model did not compile") };
    let inputs: Vec<(&str, DType)> = model
        .params
        .iter()
        .map(|p| {
            let dtype = match p.ty.dtype {
                Some((DTypeAst::I32, _)) => DType::I32,
                _ => DType::F32,
            };
            (p.name.name.as_str(), dtype)
        })
        .collect();
    let input_names: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
    let used: HashSet<&str> = model
        .params
        .iter()
        .flat_map(|p| &p.ty.dims)
        .filter_map(|d| match d {
            DimAst::Sym(i, _) => Some(i.name.as_str()),
            DimAst::Fixed(..) => None,
        })
        .collect();
    let dim_args: Vec<TokenStream> = model
        .dim_params
        .iter()
        .enumerate()
        .filter(|(_, d)| !used.contains(d.name.as_str()))
        .map(|(id, d)| {
            let a = dim_arg(&d.name, id, &input_names);
            quote! { #a: usize }
        })
        .collect();
    let mut args: Vec<TokenStream> = inputs.iter().map(|(n, t)| input_arg(n, *t, false)).collect();
    args.extend(dim_args.iter().cloned());
    let mut view_args: Vec<TokenStream> = inputs.iter().map(|(n, t)| input_arg(n, *t, true)).collect();
    view_args.extend(dim_args);
    let n_out = model.outputs.as_ref().map_or(1, Vec::len).max(1);
    let (ret_ty, view_ty) = output_types(n_out);
    let stateful = if is_stateful(file, index, &mut HashSet::new()) {
        let one_sequence = match model.params.as_slice() {
            [p] => {
                let time = match p.ty.dims.first() {
                    Some(DimAst::Fixed(n, _)) => Some(*n),
                    _ => None,
                };
                let (_, dtype) = inputs[0];
                steps_one_at_a_time(p.ty.dims.len(), time, dtype)
            }
            _ => false,
        };
        let step = if one_sequence {
            let dead_step = quote! { let _ = x; #dead };
            let steps = step_signatures(
                n_out,
                StepBodies {
                    step: dead_step.clone(),
                    run_step: dead_step.clone(),
                    streams: quote! { let _ = n; #dead },
                    step_streams: quote! { let _ = (streams, x); #dead },
                },
            );
            fn declared(d: &DimAst) -> DeclaredDim<'_> {
                match d {
                    DimAst::Fixed(n, _) => DeclaredDim::Fixed(*n),
                    DimAst::Sym(i, 0) => DeclaredDim::Sym(&i.name),
                    DimAst::Sym(..) => DeclaredDim::Other,
                }
            }
            let batch = model.settings.iter().find(|st| st.name.name == "batch").map(|st| st.value);
            let input: Vec<DeclaredDim<'_>> = model.params[0].ty.dims.iter().map(declared).collect();
            let one_stream = match model.outputs.as_deref() {
                Some([out]) => {
                    one_stream_sizes(batch, &input, &out.dims.iter().map(declared).collect::<Vec<_>>())
                }
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
            pub fn predict(&mut self, #(#args),*) -> ::core::result::Result<#ret_ty, ::seqmodel::RuntimeError> { #dead }
            /// Runs the model on views.
            pub fn run<'a>(&'a mut self, #(#view_args),*) -> ::core::result::Result<#view_ty, ::seqmodel::RuntimeError> { #dead }
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
