//! Every layer's backward pass against central finite differences of the loss.
//!
//! Tolerance: the loss is computed in f32, so a difference quotient with step h carries a
//! rounding noise of about 1e-7·|L|/h plus a truncation error of O(h²); with h = 3e-3 both
//! stay below 1e-3, hence |analytic - numeric| ≤ 2e-3 + 2e-2·|numeric|.

use ndarray::{ArrayD, IxDyn};
use seqmodel_runtime::train::{Loss, Optimizer, Trainer};
use seqmodel_runtime::{Tensor, WeightStore};

fn data(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9).wrapping_add(7);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    })
}

fn check(src: &str, x: Vec<Tensor>, y: Vec<Tensor>, loss: Loss) {
    let program = seqmodel_compiler::compile(src)
        .unwrap_or_else(|e| panic!("{}", e.render("t", src, false)))
        .main()
        .unwrap()
        .clone();
    let weights = WeightStore::random(&program, 11, 0.6);
    let mut t = Trainer::new(program, weights.clone(), loss, Optimizer::sgd(0.0)).unwrap();
    // A fixed seed before every pass keeps dropout masks identical across evaluations.
    t.set_seed(99);
    let (_, grads) = t.gradients(&x, &y).unwrap();
    let h = 3e-3f32;
    let mut checked = 0;
    let trainable: Vec<String> =
        t.program().weight_specs().into_iter().filter(|s| s.trainable).map(|s| s.key).collect();
    for key in weights.keys().map(String::from).filter(|k| trainable.contains(k)).collect::<Vec<_>>() {
        let w0 = weights.get(&key).unwrap().clone();
        let g = grads.get(&key).unwrap_or_else(|| panic!("{src}: no gradient for {key}"));
        assert_eq!(g.shape(), w0.shape(), "{key}");
        let n = w0.len();
        for k in [0, n / 3, n / 2, (2 * n) / 3, n - 1] {
            let mut wp = w0.clone();
            wp.as_slice_mut().unwrap()[k] += h;
            t.set_weight(&key, wp);
            t.reset_states();
            t.set_seed(99);
            let lp = t.training_loss(&x, &y).unwrap() as f64;
            let mut wm = w0.clone();
            wm.as_slice_mut().unwrap()[k] -= h;
            t.set_weight(&key, wm);
            t.reset_states();
            t.set_seed(99);
            let lm = t.training_loss(&x, &y).unwrap() as f64;
            t.set_weight(&key, w0.clone());
            let fd = (lp - lm) / (2.0 * h as f64);
            let an = g.as_slice().unwrap()[k] as f64;
            assert!(
                (an - fd).abs() <= 2e-3 + 2e-2 * fd.abs(),
                "{src}\n{key}[{k}]: analytic {an}, numeric {fd}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

fn f(shape: &[usize], seed: u64) -> Tensor {
    Tensor::F32(data(shape, seed))
}

#[test]
fn dense_and_activations() {
    for act in [
        "tanh",
        "sigmoid",
        "relu",
        "elu",
        "softplus",
        "swish",
        "gelu",
        "gelu_approximate",
        "softsign",
        "selu",
    ] {
        let src = format!("model M(x: [5]) -> [3] {{ x -> Dense(4, activation=\"{act}\") -> Dense(3) }}");
        check(&src, vec![f(&[4, 5], 1)], vec![f(&[4, 3], 2)], Loss::MeanSquaredError);
    }
    let probs = Tensor::F32(data(&[4, 3], 3).mapv(|v| v + 0.6));
    check(
        "model M(x: [5]) -> [3] { x -> Dense(3, activation=\"softmax\") }",
        vec![f(&[4, 5], 1)],
        vec![probs.clone()],
        Loss::KlDivergence,
    );
    check(
        "model M(x: [5]) -> [3] { x -> Dense(3) -> Activation(\"softmax\") }",
        vec![f(&[4, 5], 1)],
        vec![probs],
        Loss::CategoricalCrossentropy { from_logits: false },
    );
}

#[test]
fn lstm_stack_many_to_one_and_many_to_many() {
    check(
        "model M(x: [6, 3]) -> [2] { x -> LSTM(4, return_sequences=true) -> LSTM(3) -> Dense(2) }",
        vec![f(&[2, 6, 3], 4)],
        vec![f(&[2, 2], 5)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(x: [6, 3]) -> [6, 2] { x -> LSTM(4, return_sequences=true, go_backwards=true) -> TimeDistributed(Dense(2)) }",
        vec![f(&[2, 6, 3], 4)],
        vec![f(&[2, 6, 2], 5)],
        Loss::MeanAbsoluteError,
    );
    // Other activations: the cell's derivatives need the pre-activations (recomputed).
    check(
        "model M(x: [6, 3]) -> [2] { x -> LSTM(4, activation=\"softsign\", recurrent_activation=\"hard_sigmoid\") -> Dense(2) }",
        vec![f(&[2, 6, 3], 6)],
        vec![f(&[2, 2], 7)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn gru_both_modes_and_simple_rnn() {
    for ra in ["true", "false"] {
        let src = format!(
            "model M(x: [5, 3]) -> [5, 2] {{ x -> GRU(4, return_sequences=true, reset_after={ra}) -> GRU(2, return_sequences=true, reset_after={ra}) }}"
        );
        check(&src, vec![f(&[3, 5, 3], 6)], vec![f(&[3, 5, 2], 7)], Loss::MeanSquaredError);
    }
    check(
        "model M(x: [5, 3]) -> [2] { x -> SimpleRNN(4, return_sequences=true) -> SimpleRNN(2, activation=\"relu\") }",
        vec![f(&[3, 5, 3], 6)],
        vec![f(&[3, 2], 7)],
        Loss::Huber { delta: 1.0 },
    );
}

#[test]
fn embedding_gru_language_model_with_sparse_targets() {
    let ids = ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![1, 3, 0, 2, 4, 4, 1, 0]).unwrap();
    let tgt = ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![3, 0, 2, 1, 4, 1, 0, 2]).unwrap();
    check(
        "model M(w: [T] of i32) -> [T, 5] { w -> Embedding(5, 3) -> GRU(4, return_sequences=true) -> TimeDistributed(Dense(5)) -> TimeDistributed(Activation(\"softmax\")) }",
        vec![Tensor::I32(ids)],
        vec![Tensor::I32(tgt)],
        Loss::SparseCategoricalCrossentropy { from_logits: false },
    );
}

#[test]
fn nested_autoencoder_with_repeat_vector() {
    let src = "model E(x: [T, 2]) -> [3] { x -> LSTM(4, return_sequences=true) -> LSTM(3) }\nmodel D<T>(z: [3]) -> [T, 2] { z -> RepeatVector(T) -> LSTM(2, return_sequences=true) }\nmodel AE(x: [T, 2]) -> [T, 2] { D<T>(E(x)) }";
    let x = f(&[2, 5, 2], 8);
    check(src, vec![x.clone()], vec![x], Loss::MeanSquaredError);
}

#[test]
fn masking_state_handoff_and_bidirectional() {
    let mut x = data(&[3, 6, 2], 9);
    for t in 4..6 {
        x[[1, t, 0]] = 0.0;
        x[[1, t, 1]] = 0.0;
    }
    x[[2, 0, 0]] = 0.0;
    x[[2, 0, 1]] = 0.0;
    check(
        "model M(x: [6, 2]) -> [2] { x -> Masking(0.0) -> LSTM(3, return_sequences=true) -> GRU(2) }",
        vec![Tensor::F32(x)],
        vec![f(&[3, 2], 10)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(s: [4, 2], t: [5, 3]) -> [5, 3] { _, h, c = LSTM(3, return_state=true)(s); LSTM(3, return_sequences=true)(t, initial_state=[h, c]) }",
        vec![f(&[2, 4, 2], 11), f(&[2, 5, 3], 12)],
        vec![f(&[2, 5, 3], 13)],
        Loss::MeanSquaredError,
    );
    for mode in ["concat", "sum", "ave"] {
        let src = format!(
            "model M(x: [5, 2]) -> [2] {{ x -> Bidirectional(LSTM(3, return_sequences=true), merge_mode=\"{mode}\") -> Bidirectional(GRU(2)) -> Dense(2) }}"
        );
        check(&src, vec![f(&[2, 5, 2], 14)], vec![f(&[2, 2], 15)], Loss::MeanSquaredError);
    }
}

#[test]
fn time_ops_and_merges() {
    check(
        "model M(x: [7, 2], v: [3]) -> [3, 4] { h = x -> LSTM(4, return_sequences=true); a = h[-3:]; b = x -> ZeroPadding1D((1, 0)) -> Cropping1D((3, 2)) -> TimeDistributed(Dense(4)); c = Multiply()([a, b]); d = Add()([c, a]); Concatenate(axis=1)([d[0:1], Subtract()([d[1:3], b[1:3]])]) }",
        vec![f(&[2, 7, 2], 16), f(&[2, 3], 17)],
        vec![f(&[2, 3, 4], 18)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(x: [5, 2]) -> [6] { h = x -> LSTM(3, return_sequences=true); Concatenate()([h[-1], Maximum()([h[0], h[2]])]) }",
        vec![f(&[2, 5, 2], 19)],
        vec![f(&[2, 6], 20)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn classification_losses() {
    let labels = Tensor::F32(data(&[4, 3], 21).mapv(|v| if v > 0.0 { 1.0 } else { 0.0 }));
    check(
        "model M(x: [5]) -> [3] { x -> Dense(3, activation=\"sigmoid\") }",
        vec![f(&[4, 5], 1)],
        vec![labels.clone()],
        Loss::BinaryCrossentropy { from_logits: false },
    );
    check(
        "model M(x: [5]) -> [3] { x -> Dense(3) }",
        vec![f(&[4, 5], 1)],
        vec![labels.clone()],
        Loss::BinaryCrossentropy { from_logits: true },
    );
    check(
        "model M(x: [5]) -> [3] { x -> Dense(3) }",
        vec![f(&[4, 5], 1)],
        vec![labels],
        Loss::CategoricalCrossentropy { from_logits: true },
    );
}

#[test]
fn dropout_layers_and_rnn_dropout_in_training() {
    check(
        "model M(x: [5, 3]) -> [2] { x -> LSTM(4, return_sequences=true, dropout=0.3, recurrent_dropout=0.25) -> Dropout(0.2) -> GRU(3, recurrent_dropout=0.3, dropout=0.1) -> Dense(2) }",
        vec![f(&[3, 5, 3], 22)],
        vec![f(&[3, 2], 23)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(x: [5, 3]) -> [5, 2] { x -> GRU(4, return_sequences=true, reset_after=false, recurrent_dropout=0.3) -> SimpleRNN(2, return_sequences=true, recurrent_dropout=0.2) }",
        vec![f(&[3, 5, 3], 24)],
        vec![f(&[3, 5, 2], 25)],
        Loss::MeanSquaredError,
    );
}

/// Padded rows of a `[3, 6, 2]` batch: row 1 ends with two masked steps, row 2 starts with one.
fn padded(seed: u64) -> Tensor {
    let mut x = data(&[3, 6, 2], seed);
    for (b, t) in [(1, 4), (1, 5), (2, 0)] {
        x[[b, t, 0]] = 0.0;
        x[[b, t, 1]] = 0.0;
    }
    Tensor::F32(x)
}

#[test]
fn bidirectional_on_masked_sequences_in_every_merge_mode() {
    for mode in ["concat", "sum", "mul", "ave"] {
        for cell in ["LSTM(3", "GRU(3, reset_after=false", "SimpleRNN(3"] {
            let src = format!(
                "model M(x: [6, 2]) -> [2] {{ x -> Masking(0.0) -> Bidirectional({cell}, return_sequences=true), merge_mode=\"{mode}\") -> Bidirectional(GRU(2), merge_mode=\"{mode}\") -> Dense(2) }}"
            );
            check(&src, vec![padded(26)], vec![f(&[3, 2], 27)], Loss::MeanSquaredError);
        }
    }
}

#[test]
fn bidirectional_without_merge_with_states_and_dropout() {
    check(
        "model M(x: [6, 2]) -> ([6, 3], [6, 3]) { x -> Masking(0.0) -> Bidirectional(LSTM(3, return_sequences=true), merge_mode=None) }",
        vec![padded(28)],
        vec![f(&[3, 6, 3], 29), f(&[3, 6, 3], 30)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(x: [6, 2]) -> [4] { o, hf, cf, hb, cb = Bidirectional(LSTM(2, return_sequences=true, return_state=true))(x); Concatenate()([Add()([hf, cb]), Multiply()([cf, hb])]) }",
        vec![padded(31)],
        vec![f(&[3, 4], 32)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(x: [6, 2]) -> [2] { x -> Bidirectional(GRU(3, dropout=0.2, recurrent_dropout=0.3)) -> Dense(2) }",
        vec![padded(33)],
        vec![f(&[3, 2], 34)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn stateful_bidirectional() {
    check(
        "model M(x: [6, 2]) -> [2] where batch = 3 { x -> Bidirectional(LSTM(3, stateful=true), merge_mode=\"sum\") -> Dense(2) }",
        vec![padded(35)],
        vec![f(&[3, 2], 36)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn convolution_and_pooling() {
    for src in [
        "model M(x: [9, 3]) -> [2] { x -> Conv1D(4, 3, activation=\"tanh\") -> MaxPooling1D(2) -> LSTM(3) -> Dense(2) }",
        "model M(x: [10, 4]) -> [5, 2] { x -> Conv1D(4, 3, strides=2, padding=\"same\", groups=2, activation=\"sigmoid\") -> AveragePooling1D(3, strides=1, padding=\"same\") -> TimeDistributed(Dense(2)) }",
        "model M(x: [8, 3]) -> [2] { x -> Conv1D(5, 2, padding=\"causal\", dilation_rate=2, use_bias=false) -> Conv1D(3, 2, activation=\"gelu\") -> GlobalAveragePooling1D() -> Dense(2) }",
        "model M(x: [7, 2]) -> [1, 2] { x -> Conv1D(3, 2, padding=\"same\") -> GlobalMaxPooling1D(keepdims=true) -> Dense(2) }",
    ] {
        let out: Vec<usize> = if src.contains("[5, 2]") {
            vec![4, 5, 2]
        } else if src.contains("[1, 2]") {
            vec![4, 1, 2]
        } else {
            vec![4, 2]
        };
        let t = src.split("x: [").nth(1).unwrap().split(']').next().unwrap();
        let dims: Vec<usize> = t.split(", ").map(|d| d.parse().unwrap()).collect();
        check(src, vec![f(&[4, dims[0], dims[1]], 1)], vec![f(&out, 2)], Loss::MeanSquaredError);
    }
}

#[test]
fn masked_global_average_pooling() {
    check(
        "model M(x: [6, 2]) -> [2] { x -> Masking() -> LSTM(4, return_sequences=true) -> GlobalAveragePooling1D() -> Dense(2) }",
        vec![padded(3)],
        vec![f(&[3, 2], 2)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn layer_and_batch_normalisation() {
    for src in [
        "model M(x: [5, 3]) -> [2] { x -> LSTM(4, return_sequences=true) -> LayerNormalization() -> GRU(3) -> LayerNormalization(center=false) -> Dense(2) }",
        "model M(x: [4]) -> [2] { x -> Dense(6) -> BatchNormalization(momentum=0.9) -> Activation(\"relu\") -> LayerNormalization(scale=false) -> Dense(2) }",
        "model M(x: [4]) -> [2] { x -> Dense(5) -> BatchNormalization(center=false, scale=false) -> Dense(2) }",
    ] {
        let x = if src.contains("[5, 3]") { f(&[4, 5, 3], 1) } else { f(&[6, 4], 1) };
        let rows = x.shape()[0];
        check(src, vec![x], vec![f(&[rows, 2], 2)], Loss::MeanSquaredError);
    }
}

/// In training, BatchNormalization's statistics count only the real steps of a masked
/// sequence (Keras's `_moments` with a mask) while every step is normalised; the second model
/// lets the masked steps' outputs reach the loss (`mask=None`), so their gradient flows too.
#[test]
fn batch_normalisation_on_masked_sequences() {
    for src in [
        "model M(x: [6, 2]) -> [2] { x -> Masking() -> LSTM(4, return_sequences=true) -> BatchNormalization() -> GlobalAveragePooling1D() -> Dense(2) }",
        "model M(x: [6, 2]) -> [2] { h = Masking()(x) -> LSTM(4, return_sequences=true) -> BatchNormalization(momentum=0.8, center=false); LSTM(2)(h, mask=None) }",
    ] {
        check(src, vec![padded(3)], vec![f(&[3, 2], 2)], Loss::MeanSquaredError);
    }
}

/// With `return_attention_scores`, the weights are a second output whose gradient joins the
/// one through the weighted sum.
#[test]
fn attention_weights_as_an_output() {
    for layer in [
        "Attention(return_attention_scores=true, score_mode=\"concat\", use_causal_mask=true)",
        "AdditiveAttention(return_attention_scores=true)",
        "Attention(return_attention_scores=true, use_scale=true)",
    ] {
        check(
            &format!(
                "model M(x: [5, 3]) -> [2] {{ h = LSTM(4, return_sequences=true)(x); o, s = {layer}([h, h]); Concatenate()([Flatten()(s), Flatten()(o)]) -> Dense(2) }}"
            ),
            vec![f(&[3, 5, 3], 1)],
            vec![f(&[3, 2], 2)],
            Loss::MeanSquaredError,
        );
    }
    check(
        "model M(x: [5, 3]) -> [2] { h = LSTM(4, return_sequences=true)(x); o, s = MultiHeadAttention(2, 2, return_attention_scores=true)([h, h]); Concatenate()([Flatten()(s), Flatten()(o)]) -> Dense(2) }",
        vec![f(&[3, 5, 3], 1)],
        vec![f(&[3, 2], 2)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn permute_reshape_flatten() {
    check(
        "model M(x: [4, 6]) -> [2] { x -> Permute((2, 1)) -> LSTM(4, return_sequences=true) -> Reshape((12, 2)) -> GRU(3, return_sequences=true) -> Flatten() -> Dense(2) }",
        vec![f(&[3, 4, 6], 1)],
        vec![f(&[3, 2], 2)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(x: [3, 4]) -> [2] { x -> Dense(4) -> Reshape((-1, 2)) -> Permute((2, 1)) -> Flatten() -> Dense(2) }",
        vec![f(&[3, 3, 4], 1)],
        vec![f(&[3, 2], 2)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn parametrised_activation_layers() {
    for layer in [
        "LeakyReLU(negative_slope=0.2)",
        "ELU(alpha=0.7)",
        "ReLU(max_value=0.3, negative_slope=0.1, threshold=0.05)",
        "ReLU(max_value=6)",
        "Softmax()",
        "PReLU()",
    ] {
        let src = format!("model M(x: [4]) -> [3] {{ x -> Dense(6) -> {layer} -> Dense(3) }}");
        check(&src, vec![f(&[5, 4], 1)], vec![f(&[5, 3], 2)], Loss::MeanSquaredError);
    }
    check(
        "model M(x: [5, 3]) -> [2] { x -> Dense(4) -> PReLU(shared_axes=[1]) -> LSTM(3) -> Dense(2) }",
        vec![f(&[4, 5, 3], 1)],
        vec![f(&[4, 2], 2)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn noise_layers_in_training() {
    for layer in [
        "GaussianNoise(0.3)",
        "GaussianDropout(0.2)",
        "SpatialDropout1D(0.4)",
        "AlphaDropout(0.1)",
        "ActivityRegularization(l1=0.01, l2=0.02)",
    ] {
        let src = format!("model M(x: [5, 3]) -> [2] {{ x -> Dense(4) -> {layer} -> LSTM(3) -> Dense(2) }}");
        check(&src, vec![f(&[4, 5, 3], 1)], vec![f(&[4, 2], 2)], Loss::MeanSquaredError);
    }
}

#[test]
fn up_sampling() {
    check(
        "model M(x: [4, 3]) -> [8, 2] { x -> Conv1D(4, 2, padding=\"same\") -> UpSampling1D(2) -> LSTM(3, return_sequences=true) -> TimeDistributed(Dense(2)) }",
        vec![f(&[3, 4, 3], 1)],
        vec![f(&[3, 8, 2], 2)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn attention_scores_masks_and_keys() {
    for layer in [
        "Attention()",
        "Attention(use_scale=true)",
        "Attention(score_mode=\"concat\")",
        "Attention(score_mode=\"concat\", use_scale=true, use_causal_mask=true)",
        "AdditiveAttention()",
        "AdditiveAttention(use_scale=false, use_causal_mask=true)",
    ] {
        let src = format!(
            "model M(q: [4, 3], v: [5, 2]) -> [4, 2] {{ a = LSTM(3, return_sequences=true)(v); h = {layer}([Dense(3)(q), a]); Concatenate()([h, q]) -> TimeDistributed(Dense(2)) }}"
        );
        check(&src, vec![f(&[3, 4, 3], 1), f(&[3, 5, 2], 3)], vec![f(&[3, 4, 2], 2)], Loss::MeanSquaredError);
    }
    // A masked query: its padded steps' outputs are zeros, and no gradient flows through them.
    check(
        "model M(q: [6, 2]) -> [6, 2] { h = Masking()(q) -> LSTM(3, return_sequences=true); Attention()([h, h]) -> TimeDistributed(Dense(2)) }",
        vec![padded(5)],
        vec![f(&[3, 6, 2], 6)],
        Loss::MeanSquaredError,
    );
    // A key apart from the value, and a masked value.
    check(
        "model M(q: [4, 3], v: [6, 2]) -> [4, 2] { m = Masking()(v); a = LSTM(3, return_sequences=true)(m); k = TimeDistributed(Dense(3))(a); Attention(use_scale=true)([Dense(3)(q), a, k]) -> TimeDistributed(Dense(2)) }",
        vec![f(&[3, 4, 3], 1), padded(4)],
        vec![f(&[3, 4, 2], 2)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn multi_head_attention_self_and_cross() {
    for layer in [
        "MultiHeadAttention(2, 4)([h, h])",
        "MultiHeadAttention(num_heads=3, key_dim=2, value_dim=3, use_bias=false, use_causal_mask=true)([h, h])",
    ] {
        let src = format!(
            "model M(x: [4, 3]) -> [4, 2] {{ h = Dense(6)(x); a = {layer}; LayerNormalization()(a) -> TimeDistributed(Dense(2)) }}"
        );
        check(&src, vec![f(&[3, 4, 3], 1)], vec![f(&[3, 4, 2], 2)], Loss::MeanSquaredError);
    }
    // Cross-attention with a key apart from the value and another output size.
    check(
        "model M(x: [4, 3], y: [6, 2]) -> [4, 2] { h = Dense(6)(x); e = LSTM(4, return_sequences=true)(y); k = TimeDistributed(Dense(3))(e); MultiHeadAttention(2, 3, output_shape=5)([h, e, k]) -> TimeDistributed(Dense(2)) }",
        vec![f(&[3, 4, 3], 1), f(&[3, 6, 2], 3)],
        vec![f(&[3, 4, 2], 2)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(x: [6, 2]) -> [2] { m = Masking()(x); h = LSTM(4, return_sequences=true)(m); MultiHeadAttention(2, 2)([h, h]) -> GlobalAveragePooling1D() -> Dense(2) }",
        vec![padded(5)],
        vec![f(&[3, 2], 2)],
        Loss::MeanSquaredError,
    );
}

/// The score weights alone, where their gradients are largest.
#[test]
fn attention_score_weights() {
    for layer in [
        "Attention(use_scale=true)",
        "Attention(score_mode=\"concat\")",
        "Attention(score_mode=\"concat\", use_scale=true)",
        "AdditiveAttention()",
    ] {
        let src = format!("model M(q: [4, 3], v: [5, 3]) -> [4, 3] {{ {layer}([q, v]) }}");
        let q = Tensor::F32(data(&[3, 4, 3], 1).mapv(|v| 4.0 * v));
        let v = Tensor::F32(data(&[3, 5, 3], 3).mapv(|v| 4.0 * v));
        check(&src, vec![q, v], vec![f(&[3, 4, 3], 2)], Loss::MeanSquaredError);
    }
}

#[test]
fn rescaling() {
    check(
        "model M(x: [5, 3]) -> [2] { x -> Dense(4) -> Rescaling(scale=-1.5, offset=0.25) -> LSTM(3) -> Dense(2) }",
        vec![f(&[4, 5, 3], 1)],
        vec![f(&[4, 2], 2)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn slices_with_steps_reversal_and_other_axes() {
    check(
        "model M(x: [7, 3]) -> [3, 2] { h = x -> Dense(4, activation=\"tanh\"); a = h[1::2, 0:4:2]; b = h[-2:0:-2, 1:3]; Add()([a, b]) -> Dense(2) }",
        vec![f(&[2, 7, 3], 40)],
        vec![f(&[2, 3, 2], 41)],
        Loss::MeanSquaredError,
    );
    check(
        "model M(x: [T, 3]) -> [2] { h = x -> LSTM(4, return_sequences=true); Concatenate()([h[::-1] -> LSTM(2), h[..., 1:3] -> LSTM(2), h[2, :2], h[-1, 3:]]) -> Dense(2) }",
        vec![f(&[2, 6, 3], 42)],
        vec![f(&[2, 2], 43)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn reductions_and_stacking() {
    check(
        "model M(x: [5, 3]) -> [2] { h = x -> LSTM(4, return_sequences=true); m = Mean(axis=1)(h); s = Sum(axis=1)(h); mx = Max(axis=1)(h); mn = Min(axis=-1, keepdims=true)(h) -> Flatten(); st = Stack(axis=1)([m, s, mx]) -> Flatten(); Concatenate()([st, mn, Stack(axis=-1)([m, mx]) -> Flatten()]) -> Dense(2) }",
        vec![f(&[2, 5, 3], 44)],
        vec![f(&[2, 2], 45)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn broadcast_merges_softmax_over_time_and_expand_dims() {
    check(
        "model M(x: [T, 3]) -> [2] { h = x -> LSTM(4, return_sequences=true); w = h -> Dense(1) -> Softmax(axis=1); c = Sum(axis=1)(Multiply()([w, h])); r = Mean(axis=1)(Divide()([h, Rescaling(scale=1.0, offset=2.0)(w)])); d = Subtract()([h, Mean(axis=1, keepdims=true)(h)]) -> Max(axis=1); e = ExpandDims(axis=-1)(c) -> Flatten(); Concatenate()([c, r, d, Maximum()([e, Minimum()([c, r])])]) -> Dense(2) }",
        vec![f(&[2, 6, 3], 46)],
        vec![f(&[2, 2], 47)],
        Loss::MeanSquaredError,
    );
}

#[test]
fn masks_computed_in_the_graph() {
    // Steps whose features average above 0 are real; the mask and a float copy of it steer
    // the recurrences (no gradient flows into a comparison).
    check(
        "model M(x: [T, 3]) -> [4] { m = Greater(0.0)(Mean(axis=-1)(x)); h = LSTM(4, return_sequences=true)(x, mask=m); g = Multiply()([h, Cast(\"float32\")(m) -> ExpandDims(axis=-1)]); k = LogicalOr()([m, LogicalNot()(m)]); Concatenate()([LSTM(2)(g, mask=k), LSTM(2)(h, mask=None)]) }",
        vec![f(&[3, 6, 3], 48)],
        vec![f(&[3, 4], 49)],
        Loss::MeanSquaredError,
    );
}
