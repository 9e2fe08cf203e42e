//! Snapshots of the generated Rust, one small model per family of operations, and a check
//! that every example's generated code parses as Rust.

fn generated(src: &str) -> String {
    let c = seqmodel_compiler::compile(src).unwrap_or_else(|e| panic!("{}", e.render("t", src, false)));
    seqmodel_compiler::codegen::render(&c)
}

#[test]
fn dense_and_activation() {
    insta::assert_snapshot!(generated(
        "model M(x: [4]) -> [2] { x -> Dense(3, activation=\"tanh\") -> Dense(2) -> Activation(\"softmax\") }"
    ));
}

#[test]
fn recurrent_stateful_and_states() {
    insta::assert_snapshot!(generated(
        "model S(x: [T, 3]) -> ([4], [4], [4]) where batch = 2 { o, h, c = LSTM(4, stateful=true, return_state=true)(x); (o, h, c) }"
    ));
}

#[test]
fn time_ops_symbolic_dims_and_nested_models() {
    insta::assert_snapshot!(generated(
        "model E(x: [T, 2]) -> [3] { x -> GRU(3) }\nmodel D<T>(z: [3]) -> [T, 2] { z -> RepeatVector(T) -> SimpleRNN(2, return_sequences=true) }\nmodel AE(x: [T, 2]) -> [T-1, 2] { y = D<T>(E(x)); y[1:] -> ZeroPadding1D((1, 0)) -> Cropping1D((1, 0)) }"
    ));
}

#[test]
fn embedding_bidirectional_merges_and_time_distributed() {
    insta::assert_snapshot!(generated(
        "model L(w: [T] of i32, v: [6]) -> [T, 5] { e = Embedding(9, 4, mask_zero=true)(w); h = Bidirectional(LSTM(3, return_sequences=true), merge_mode=\"sum\")(e); Concatenate()([h, h]) -> TimeDistributed(Dense(5)) }"
    ));
}

#[test]
fn described_layers_convolution_normalisation_reshaping() {
    insta::assert_snapshot!(generated(
        "model C(x: [12, 4]) -> [3] { x -> Conv1D(6, 3, padding=\"causal\", dilation_rate=2, activation=\"relu\") -> BatchNormalization() -> MaxPooling1D(2) -> LayerNormalization(epsilon=1e-5) -> Permute((2, 1)) -> Flatten() -> LeakyReLU() -> GaussianNoise(0.1) -> Dense(3) }"
    ));
}

#[test]
fn every_example_generates_valid_rust() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let c = seqmodel_compiler::compile(&std::fs::read_to_string(&p).unwrap()).unwrap();
        syn::parse2::<syn::File>(seqmodel_compiler::codegen::file_tokens(&c))
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

/// The public associated items of every `impl` in `file`, as `name: signature` (bodies and
/// docs left out), with the macros they sit in expanded by name.
fn api(tokens: proc_macro2::TokenStream) -> std::collections::BTreeMap<String, String> {
    use quote::ToTokens;
    fn items(list: &[syn::Item], out: &mut std::collections::BTreeMap<String, String>) {
        for item in list {
            match item {
                syn::Item::Impl(i) => impl_items(&i.items, out),
                syn::Item::Const(c) => {
                    if let syn::Expr::Block(b) = &*c.expr {
                        let inner: Vec<syn::Item> = b
                            .block
                            .stmts
                            .iter()
                            .filter_map(|s| if let syn::Stmt::Item(i) = s { Some(i.clone()) } else { None })
                            .collect();
                        items(&inner, out);
                    }
                }
                _ => {}
            }
        }
    }
    fn impl_items(items: &[syn::ImplItem], out: &mut std::collections::BTreeMap<String, String>) {
        for item in items {
            match item {
                // Private helpers (the forward pass) are no part of the API.
                syn::ImplItem::Fn(f) if matches!(f.vis, syn::Visibility::Public(_)) => {
                    out.insert(
                        f.sig.ident.to_string(),
                        f.sig.to_token_stream().to_string().replace(" ,)", ")"),
                    );
                }
                syn::ImplItem::Const(c) => {
                    out.insert(c.ident.to_string(), c.ty.to_token_stream().to_string());
                }
                syn::ImplItem::Macro(m) => {
                    // `if_keras! { fn from_keras ... }`: the items inside.
                    let inner: syn::ItemImpl =
                        syn::parse_str(&format!("impl X {{ {} }}", m.mac.tokens)).unwrap();
                    impl_items(&inner.items, out);
                }
                _ => {}
            }
        }
    }
    let file: syn::File = syn::parse2(tokens).unwrap();
    let mut out = std::collections::BTreeMap::new();
    items(&file.items, &mut out);
    out
}

#[test]
fn a_broken_models_stand_in_declares_the_api_it_would_have_had() {
    // For every model of the examples, the stand-in the macro emits when the model does not
    // check has the same public items, with the same signatures, as its generated code.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut compared = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let src = std::fs::read_to_string(&p).unwrap();
        let file = seqmodel_grammar::parse(&src).unwrap();
        let c = seqmodel_compiler::compile_ast(&file).unwrap();
        for (i, program) in c.programs.iter().enumerate() {
            let real = api(seqmodel_compiler::codegen::model_tokens(program));
            let stand_in = api(seqmodel_compiler::macro_support::stub_tokens(&file, i));
            assert_eq!(stand_in, real, "{} model {}", p.display(), program.name);
            compared += 1;
        }
    }
    assert!(compared >= 20, "{compared}");
}

/// `(program, weight values)` for `src`'s main model: every weight a short ramp, so the baked
/// arrays show the packed order.
fn with_ramp_weights(
    src: &str,
) -> (seqmodel_compiler::ir::Program, std::collections::HashMap<String, Vec<f32>>) {
    let c = seqmodel_compiler::compile(src).unwrap_or_else(|e| panic!("{}", e.render("t", src, false)));
    let p = c.programs.last().unwrap().clone();
    let values = p
        .weight_specs()
        .iter()
        .map(|w| {
            let n: usize = w.shape.iter().product();
            (w.key.clone(), (0..n).map(|i| i as f32 / 8.0 - 0.5).collect())
        })
        .collect();
    (p, values)
}

fn no_std(src: &str) -> Result<String, String> {
    let (p, values) = with_ramp_weights(src);
    let tokens = seqmodel_compiler::codegen::embedded::model_tokens(&p, &values, "/weights.safetensors")
        .map_err(|e| e.to_string())?;
    Ok(prettyplease::unparse(&syn::parse2(tokens).unwrap()))
}

#[test]
fn no_std_stepped_lstm_gru_dense() {
    insta::assert_snapshot!(
        no_std(
            "model G(x: [T, 2]) -> [T, 2] where batch = 1 { x -> LSTM(3, stateful=true, return_sequences=true) -> GRU(2, return_sequences=true) -> TimeDistributed(Dense(2, activation=\"tanh\")) }"
        )
        .unwrap()
    );
}

/// A fixed window: the recurrence steps over it inside one dispatch, the Dense after the last
/// step runs once.
#[test]
fn no_std_fixed_window_classifier() {
    insta::assert_snapshot!(
        no_std("model W(x: [5, 2]) -> [3] { x -> LSTM(2) -> Dense(3, activation=\"softmax\") }").unwrap()
    );
}

#[test]
fn no_std_refuses_what_it_does_not_cover_naming_the_layer() {
    let cases = [
        ("model M(x: [4]) -> [2] { x -> Dense(2) }", "needs one float input `[T, F]`"),
        ("model M(x: [T, 2]) -> [T, 2] { x -> SimpleRNN(2, return_sequences=true) }", "layer `simple_rnn`"),
        ("model M(x: [T, 2]) -> [2] { x -> LSTM(2, activation=\"relu\") }", "activation tanh"),
        ("model M(x: [T, 2]) -> [2] { x -> LSTM(2) -> Dense(2, activation=\"gelu\") }", "activation Gelu"),
        ("model M(x: [T, 4]) -> [T, 2] { x -> Conv1D(2, 1) }", "layer `conv1d` (Conv1D)"),
        ("model M(x: [T, 2]) -> [2] where batch = 4 { x -> LSTM(2) }", "batch 1"),
    ];
    for (src, want) in cases {
        let e = no_std(src).unwrap_err();
        assert!(e.starts_with("model `M` has no `no_std` code: ") && e.contains(want), "{src}: {e}");
    }
}
