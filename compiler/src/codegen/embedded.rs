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

use super::stepped::{self, StepKind, Stepped};
use crate::ir::{self, Program};

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
    let stepped = stepped::stepped(p).map_err(fail)?;
    let (f, o) = (stepped.f, stepped.o);
    let mut statics = Vec::new();
    let mut fields = Vec::new();
    let mut zeros = Vec::new();
    // Run at the start of a window, at every step, and once after a window's last step.
    let (mut starts, mut steps, mut onces) = (Vec::new(), Vec::new(), Vec::new());
    let mut resets = Vec::new();
    let window = stepped.window;
    for l in &stepped.layers {
        let i = l.index;
        // A weight as a static array, packed when it is a matrix (`rows × columns`).
        let mut array = |name: &str, key: &str, rows_cols: Option<(usize, usize)>| {
            let key = format!("{}/{key}", l.weights);
            let v = values.get(&key).ok_or_else(|| fail(format!("the weight `{key}` is missing")))?;
            let laid = match rows_cols {
                Some((k, c)) => {
                    let mut out = vec![0.0; v.len()];
                    if !pack_blocks(k, c, v, BAKED_WIDTH, &mut out) {
                        return Err(fail(format!("the weight `{key}` is not {k} × {c}")));
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
        let mut weights: HashMap<&str, TokenStream> = HashMap::new();
        weights.insert("width", quote! { ::seqmodel::__private::embedded::step::BAKED_WIDTH });
        let none = quote! { ::core::option::Option::None };
        let some = |t: TokenStream| quote! { ::core::option::Option::Some(#t) };
        let mut buffers = vec!["y"];
        match &l.kind {
            StepKind::Recurrent { attrs: a, lstm } => {
                let (d, u, gu) = (a.input_dim, a.units, l.kind.gate_columns());
                let kernel = array("KERNEL", "kernel", Some((d, gu)))?;
                let recurrent = array("RECURRENT", "recurrent_kernel", Some((u, gu)))?;
                weights.insert("kernel", quote! { &#kernel.0 });
                weights.insert("recurrent", quote! { &#recurrent.0 });
                let (bias, recurrent_bias) = match (a.use_bias, *lstm) {
                    (false, _) => (none.clone(), none.clone()),
                    (true, true) => {
                        let b = array("BIAS", "bias", None)?;
                        (some(quote! { &#b.0 }), none.clone())
                    }
                    (true, false) => {
                        let b = array("BIAS", "bias", None)?;
                        (some(quote! { &#b.0[..#gu] }), some(quote! { &#b.0[#gu..] }))
                    }
                };
                weights.insert("bias", bias);
                weights.insert("recurrent_bias", recurrent_bias);
                let states: &[&str] = if *lstm { &["h", "c"] } else { &["h"] };
                buffers = states.to_vec();
                for name in states.iter().copied().chain(["xp", "rec", "new"]) {
                    let (field, len) = (format_ident!("{}{}", name, i), l.kind.len(name));
                    fields.push(quote! { #field: [f32; #len], });
                    zeros.push(quote! { #field: [0.0; #len], });
                }
                let reset = |owner: TokenStream| {
                    let each = states.iter().map(|s| format_ident!("{}{}", s, i));
                    quote! { #(#owner.#each = [0.0; #u];)* }
                };
                // A layer that is not stateful starts every call (a sequence of one step) from zeros.
                if a.stateful {
                    resets.push(reset(quote! { self }));
                } else if window.is_some() {
                    starts.push(reset(quote! { m }));
                } else {
                    steps.push(reset(quote! { m }));
                }
            }
            StepKind::Dense { units, input_dim, use_bias, .. } => {
                let kernel = array("KERNEL", "kernel", Some((*input_dim, *units)))?;
                weights.insert("kernel", quote! { &#kernel.0 });
                let bias = if *use_bias {
                    let b = array("BIAS", "bias", None)?;
                    some(quote! { &#b.0 })
                } else {
                    none.clone()
                };
                weights.insert("bias", bias);
            }
            StepKind::Map { .. } => {}
        }
        if buffers == ["y"] {
            let (y, width) = (format_ident!("y{}", i), l.kind.width());
            fields.push(quote! { #y: [f32; #width], });
            zeros.push(quote! { #y: [0.0; #width], });
        }
        let x = match l.from {
            Some(j) => {
                let field = output_field(&stepped, j);
                quote! { m.#field }
            }
            None => quote! { x },
        };
        let x = quote! { &#x[..] };
        let weight = |part: &str| weights.get(part).cloned().unwrap_or_default();
        let buffer = |part: &str| {
            let field = format_ident!("{}{}", part, i);
            quote! { &mut m.#field }
        };
        let call = stepped::kernel_call(l, x, &weight, &buffer);
        if window.is_some() && l.once { onces.push(call) } else { steps.push(call) }
    }
    let out_field = output_field(&stepped, stepped.output);
    let ident = format_ident!("{}", p.name);
    let name = &p.name;
    let input = &p.inputs[0].name;
    let params = p.param_count();
    let (entry, run, doc_entry) = entry_point(
        &stepped,
        &ident,
        input,
        &out_field,
        (&starts, &steps, &onces),
        (&mut fields, &mut zeros),
    );
    let no_std_doc = format!(
        " `no_std` code: the weights are compiled in, the states and buffers are arrays inside\n \
         the value, and {doc_entry} allocates nothing and reads no file."
    );
    Ok(quote! {
        #(#[doc = #docs])*
        #[doc = ""]
        #[doc = #no_std_doc]
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
            #run
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

                #entry

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

/// The entry point of the generated type and the `WithSimd` it dispatches: `step` for a model
/// stepped one time step per call, `predict` over a fixed window (whose per-step output, if
/// any, gets its buffer in `fields`/`zeros`); and how its docs name it.
fn entry_point(
    stepped: &Stepped<'_>,
    ident: &proc_macro2::Ident,
    input: &str,
    out_field: &proc_macro2::Ident,
    (starts, steps, onces): (&[TokenStream], &[TokenStream], &[TokenStream]),
    (fields, zeros): (&mut Vec<TokenStream>, &mut Vec<TokenStream>),
) -> (TokenStream, TokenStream, &'static str) {
    let (f, o) = (stepped.f, stepped.o);
    let pulp = quote! { ::seqmodel::__private::embedded::pulp };
    let check = quote! { ::seqmodel::__private::embedded::step::check_finite };
    let Some(t) = stepped.window else {
        let entry = quote! {
            /// One time step: the step's features in, its outputs out (borrowed from the
            /// model), the states of stateful layers carried to the next call. A NaN or
            /// infinite input is an error, and the states are then left as they were.
            pub fn step(&mut self, x: &[f32; #f]) -> ::core::result::Result<&[f32; #o], ::seqmodel::NonFinite> {
                #check(#input, x)?;
                let arch = self.arch;
                arch.dispatch(Step { m: self, x });
                ::core::result::Result::Ok(&self.#out_field)
            }
        };
        let run = quote! {
            /// One step of the model with the instruction set `S`.
            struct Step<'m, 'x> {
                m: &'m mut #ident,
                x: &'x [f32; #f],
            }
            impl #pulp::WithSimd for Step<'_, '_> {
                type Output = ();
                #[inline(always)]
                fn with_simd<S: #pulp::Simd>(self, s: S) {
                    let Step { m, x } = self;
                    let backwards = m.backwards;
                    m.backwards = !backwards;
                    #(#steps)*
                }
            }
        };
        return (entry, run, "[`Self::step`]");
    };
    let (ret, out, copy, each) = if stepped.per_step_output {
        fields.push(quote! { seq_out: [[f32; #o]; #t], });
        zeros.push(quote! { seq_out: [[0.0; #o]; #t], });
        (
            quote! { [[f32; #o]; #t] },
            quote! { seq_out },
            quote! { m.seq_out[t] = m.#out_field; },
            quote! { (t, x) in window.iter().enumerate() },
        )
    } else {
        (quote! { [f32; #o] }, quote! { #out_field }, quote! {}, quote! { x in window.iter() })
    };
    let entry = quote! {
        /// Steps in a window.
        pub const WINDOW: usize = #t;

        /// The model over one window of `WINDOW` steps (Keras's `predict` on one sample), its
        /// output borrowed from the model. Layers that are not stateful start from zeros;
        /// stateful ones carry their states to the next call. A NaN or infinite input is an
        /// error (its index flat over the window), and the states are then left as they were.
        pub fn predict(&mut self, x: &[[f32; #f]; #t]) -> ::core::result::Result<&#ret, ::seqmodel::NonFinite> {
            for (t, row) in x.iter().enumerate() {
                #check(#input, row).map_err(|e| ::seqmodel::NonFinite { index: t * #f + e.index, ..e })?;
            }
            let arch = self.arch;
            arch.dispatch(Window { m: self, window: x });
            ::core::result::Result::Ok(&self.#out)
        }
    };
    let run = quote! {
        /// The model over a window with the instruction set `S`.
        struct Window<'m, 'x> {
            m: &'m mut #ident,
            window: &'x [[f32; #f]; #t],
        }
        impl #pulp::WithSimd for Window<'_, '_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: #pulp::Simd>(self, s: S) {
                let Window { m, window } = self;
                #(#starts)*
                for #each {
                    let backwards = m.backwards;
                    m.backwards = !backwards;
                    #(#steps)*
                    #copy
                }
                #(#onces)*
            }
        }
    };
    (entry, run, "[`Self::predict`]")
}

/// [`model_tokens`] for a file's main model (`main`, the last of the file's programs) with the
/// weight file `baked` that [`crate::baked::check_for_main`] accepted: what `seqmodel!(…,
/// no_std)`, the build.rs `Builder` and `seqc build --no-std` generate.
pub fn baked_tokens(main: &Program, baked: &crate::baked::BakedWeights) -> Result<TokenStream, String> {
    let values = crate::baked::weight_values(baked).map_err(|e| e.to_string())?;
    let path = baked.path.display().to_string();
    model_tokens(main, &values, &path).map_err(|e| e.to_string())
}

/// [`baked_tokens`] for the file `c` as formatted Rust source (prettyplease).
pub fn render(c: &crate::Compiled, baked: &crate::baked::BakedWeights) -> Result<String, String> {
    let main = c.programs.last().ok_or_else(|| format!("the file has no model for `{}`", baked.shown))?;
    let tokens = baked_tokens(main, baked)?;
    Ok(match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(f) => prettyplease::unparse(&f),
        Err(_) => tokens.to_string(),
    })
}

/// The field that holds the output of the layer at `index` (`m.h3`, `m.y4`), for a step body.
fn output_field(stepped: &Stepped<'_>, index: usize) -> proc_macro2::Ident {
    match stepped.layers.iter().find(|l| l.index == index).map(|l| &l.kind) {
        Some(StepKind::Recurrent { .. }) => format_ident!("h{}", index),
        _ => format_ident!("y{}", index),
    }
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
