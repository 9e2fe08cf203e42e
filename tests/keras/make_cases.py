#!/usr/bin/env python3
"""Writes the Keras cases of this folder: functional graphs that use Keras 3 *operations*
between layers (slicing with steps and on any axis, reductions, stacking, broadcast
arithmetic, masks computed by comparisons and passed as `mask=`), in the layout of
../../../shared/conformance (its README describes every file), so that `seqc conformance
tests/keras` checks them like the shared cases.

Run with Keras 3.15 on TensorFlow (the versions of ../shared): `python3 make_cases.py`
(every case) or `python3 make_cases.py NAME...` (only those; the others stay as they are).
Every weight is drawn from [-0.5, 0.5] with a fixed seed; the outputs are Keras's own.
"""
import json, os, shutil, sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
import tensorflow as tf
from keras import layers, ops

HERE = os.path.dirname(os.path.abspath(__file__))
# The cases to write (every one when empty).
ONLY = set(sys.argv[1:])


def set_weights(model, seed):
    """Every weight from [-0.5, 0.5] (none zero), moving variances from [0.5, 1.5], as in
    ../shared/conformance-layers."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        v = rng.uniform(-0.5, 0.5, size=w.shape).astype("float32")
        v[v == 0] = 0.25
        if w.path.endswith("moving_variance"):
            v = v + 1.0
        w.assign(v)


def versions():
    import h5py
    return {"keras_version": keras.__version__, "backend": keras.backend.backend(),
            "tensorflow_version": tf.__version__, "numpy_version": np.__version__,
            "h5py_version": h5py.__version__}


def shape_of(t):
    return [None if d is None else int(d) for d in t.shape]


def write_case(name, covers, model, calls, seed, train=None, h5=False):
    """`calls`: a list of input lists (one model call each, states irrelevant); `h5`: also
    the legacy `model.h5` (whose config has no `module` to tell operations from layers)."""
    if ONLY and name not in ONLY:
        return
    d = os.path.join(HERE, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    set_weights(model, seed)
    model.save(os.path.join(d, "model.keras"))
    if h5:
        model.save(os.path.join(d, "model.h5"))
    case_calls, call_shapes = [], []
    many_calls = len(calls) > 1
    for ci, inputs in enumerate(calls):
        outs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        in_files, out_files = [], []
        for k, x in enumerate(inputs):
            f = ("input" + (f"_{ci}" if many_calls else "") + (f"_{k}" if len(inputs) > 1 else "")) + ".npy"
            np.save(os.path.join(d, f), x)
            in_files.append(f)
        for k, y in enumerate(outs):
            f = ("expected" + (f"_{ci}" if many_calls else "") + (f"_{k}" if len(outs) > 1 else "")) + ".npy"
            np.save(os.path.join(d, f), np.asarray(y, dtype="float32"))
            out_files.append(f)
        case_calls.append({"reset_states_before": False, "inputs": in_files, "expected": out_files})
        call_shapes.append({"inputs": [list(x.shape) for x in inputs],
                            "expected": [list(np.asarray(y).shape) for y in outs]})
    case = {"name": name, "kind": "train" if train else "inference", "covers": covers, **versions(),
            "model_files": ["model.keras"] + (["model.h5"] if h5 else []) + (["trained.keras"] if train else []),
            "model_class": type(model).__name__,
            "input_shapes": [shape_of(t) for t in model.inputs],
            "input_dtypes": [str(t.dtype) for t in model.inputs],
            "output_shapes": [shape_of(t) for t in model.outputs],
            "calls": case_calls, "call_shapes": call_shapes, "stateful": False,
            "tolerance": {"max_abs": 1e-5, "why": "float32 computation, outputs of order 1"}}
    if train:
        case["train"] = train(model, d)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print(name, "written")


def fit_and_record(x, y, loss, optimizer, batch, epochs):
    """A training description in the shared layout: each step's loss (weights before the
    step's update, as `train_on_batch` returns it), the trained model and its outputs."""
    def train(model, d):
        model.compile(optimizer=optimizer, loss=loss)
        np.save(os.path.join(d, "x_train.npy"), x)
        np.save(os.path.join(d, "y_train.npy"), y)
        steps = len(x) // batch
        losses = np.zeros((epochs, steps), dtype="float32")
        for e in range(epochs):
            for i in range(steps):
                sl = slice(i * batch, (i + 1) * batch)
                losses[e, i] = model.train_on_batch(x[sl], y[sl])
        np.save(os.path.join(d, "losses.npy"), losses)
        model.save(os.path.join(d, "trained.keras"))
        xin = np.load(os.path.join(d, "input.npy"))
        np.save(os.path.join(d, "trained_expected.npy"), np.asarray(model(xin, training=False), dtype="float32"))
        return {"x": "x_train.npy", "y": "y_train.npy", "x_shape": list(x.shape), "x_dtype": str(x.dtype),
                "y_shape": list(y.shape), "y_dtype": str(y.dtype), "loss": loss,
                "optimizer": keras.optimizers.serialize(model.optimizer), "batch_size": batch,
                "epochs": epochs, "shuffle": False, "losses": "losses.npy", "losses_shape": list(losses.shape),
                "trained_model": "trained.keras", "trained_expected": "trained_expected.npy",
                "tolerance": {"losses_max_rel": 1e-4, "trained_weights_max_abs": 1e-4,
                              "trained_expected_max_abs": 1e-4}}
    return train


def floats(rng, *shape):
    return rng.uniform(-1, 1, size=shape).astype("float32")


def main():
    rng = np.random.default_rng(7)

    # Slicing with steps, negative bounds and steps, on the feature axis, integer indices
    # that drop an axis, and the ellipsis, on a fixed length.
    x = keras.Input((9, 4))
    d = layers.Dense(6)(x)
    outs = [d[:, ::2, :], d[:, -2:1:-3, :], d[:, :, 1:5:2], d[:, 3, 2:], d[..., -1], d[:, ::-1]]
    write_case("ops_slicing_steps_and_axes", "GetItem: steps, negative bounds and steps, feature-axis slices, "
               "integer indices dropping the time or the feature axis, the ellipsis (fixed length)",
               keras.Model(x, outs), [[floats(rng, 3, 9, 4)]], seed=1, h5=True)

    # The same on a length known only at run time, followed by recurrent layers.
    x = keras.Input((None, 4))
    h = layers.LSTM(5, return_sequences=True)(x)
    a = layers.LSTM(3)(h[:, ::2, :])
    b = layers.GRU(3)(h[:, ::-1])
    c = keras.ops.mean(h[:, 1:-1, 0:3], axis=1)
    e = layers.SimpleRNN(2)(h[:, -3::-2, :])
    write_case("ops_slicing_symbolic_length", "GetItem with steps and reversal on a length known only at "
               "run time (two calls of 8 and 7 steps), feeding LSTM/GRU/SimpleRNN, and a mean over time",
               keras.Model(x, [a, b, c, e]), [[floats(rng, 2, 8, 4)], [floats(rng, 2, 7, 4)]], seed=2)

    # Reductions over every axis, with and without keepdims, and stacking.
    x = keras.Input((6, 4))
    h = layers.LSTM(5, return_sequences=True)(x)
    m = keras.ops.mean(h, axis=1)
    outs = [m, keras.ops.max(h, axis=-1), keras.ops.sum(h, axis=1, keepdims=True),
            keras.ops.min(h, axis=2, keepdims=True), keras.ops.stack([m, keras.ops.max(h, axis=1)], axis=1),
            keras.ops.stack([h, h * 2.0, h + 1.0], axis=-1), keras.ops.stack([m, m * 3.0], axis=-1),
            keras.ops.square(m) - m ** 2.0 + keras.ops.negative(m)]
    write_case("ops_reductions_stack", "keras.ops mean/max/sum/min over each axis (keepdims both ways), "
               "keras.ops.stack on the first, middle and last axis, square, ** 2 and negative",
               keras.Model(x, outs), [[floats(rng, 3, 6, 4)]], seed=3, h5=True)

    # Attention written with operations: broadcasting arithmetic between tensors.
    x = keras.Input((None, 3))
    centred = x - keras.ops.mean(x, axis=1, keepdims=True)
    h = layers.LSTM(6, return_sequences=True)(centred)
    score = layers.Dense(1, activation="tanh")(h)
    w = keras.ops.softmax(score, axis=1)
    ctx = keras.ops.sum(w * h, axis=1)
    r = keras.ops.mean(h / (w + 1.0), axis=1)
    q = keras.ops.add(ctx, r) - keras.ops.multiply(ctx, 0.5)
    y = layers.Dense(2)(keras.ops.concatenate([q, keras.ops.maximum(ctx, r)], axis=-1))
    write_case("ops_broadcast_attention", "attention pooling written with operations: broadcast subtract, "
               "multiply and divide of [T, 1] with [T, F] and [1, F] with [T, F], softmax over time, "
               "sum over time, keras.ops.add/multiply/maximum",
               keras.Model(x, [ctx, y]), [[floats(rng, 2, 7, 3)], [floats(rng, 2, 4, 3)]], seed=4)

    # A mask computed from the token ids and passed as `mask=`.
    ids = keras.Input((None,), dtype="int32")
    mask = keras.ops.not_equal(ids, 0)
    e = layers.Embedding(20, 5)(ids)
    h = layers.LSTM(4, return_sequences=True)(e, mask=mask)
    o = layers.GRU(3)(h)
    tok = rng.integers(1, 20, size=(3, 7)).astype("int32")
    tok[0, 5:] = 0
    tok[1, 2:] = 0
    write_case("ops_mask_not_equal", "mask = keras.ops.not_equal(ids, 0) passed as LSTM(...)(e, mask=mask) "
               "after an Embedding without mask_zero; the mask passes on to a GRU",
               keras.Model(ids, [h, o]), [[tok]], seed=5, h5=True)

    # A mask from float features (any feature non-zero), combined with logical operations.
    x = keras.Input((None, 3))
    m = keras.ops.any(keras.ops.not_equal(x, 0.0), axis=-1)
    m2 = keras.ops.logical_and(m, keras.ops.logical_not(keras.ops.equal(x[:, :, 0], 9.0)))
    a = layers.LSTM(4)(x, mask=m)
    b = layers.GRU(4, return_sequences=True)(x, mask=m2)
    xs = floats(rng, 3, 6, 3)
    xs[0, 4:] = 0.0
    xs[1, 1, 0] = 9.0
    xs[2, 3:] = 0.0
    write_case("ops_mask_any_logical", "masks from keras.ops.any(keras.ops.not_equal(x, 0.0), axis=-1), "
               "logical_and / logical_not / equal on a feature slice, passed as mask= to LSTM and GRU",
               keras.Model(x, [a, b]), [[xs]], seed=6)

    # Masking in a functional graph: Keras records the mask as operations (NotEqual, Any)
    # given to each call as `mask=`; an operation on the masked sequence passes no mask on.
    x = keras.Input((None, 3))
    m = layers.Masking()(x)
    h = layers.LSTM(4, return_sequences=True)(m)
    a = layers.LSTM(3)(h)
    b = layers.LSTM(3)(h * 2.0)
    c = layers.GlobalAveragePooling1D()(h)
    xs = floats(rng, 3, 6, 3)
    xs[0, 4:] = 0.0
    xs[2, 1] = 0.0
    write_case("ops_functional_masking", "functional Masking -> LSTM(rs) -> LSTM (the mask recorded as "
               "NotEqual/Any operations passed as mask=), an operation on the masked sequence (h * 2.0, which "
               "passes no mask on) -> LSTM, and a mask-aware GlobalAveragePooling1D",
               keras.Model(x, [a, b, c]), [[xs]], seed=8, h5=True)

    # Embedding(mask_zero) with attention (a list of masks) and an operation dropping it.
    ids = keras.Input((None,), dtype="int32")
    e = layers.Embedding(20, 4, mask_zero=True)(ids)
    h = layers.GRU(5, return_sequences=True)(e)
    att = layers.Attention()([h, h])
    t = layers.LSTM(3)(keras.ops.tanh(h))
    p = layers.LSTM(2)(att)
    tok = rng.integers(1, 20, size=(3, 6)).astype("int32")
    tok[0, 4:] = 0
    tok[1, 3:] = 0
    write_case("ops_embedding_mask_attention", "Embedding(mask_zero) -> GRU(rs) -> Attention([h, h]) (masks "
               "recorded as a list) -> LSTM, and keras.ops.tanh on the masked sequence (no mask after it) -> LSTM",
               keras.Model(ids, [t, p]), [[tok]], seed=9)

    # Attention with a masked query: Keras zeroes the output at padded query steps.
    ids = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 8, mask_zero=True)(ids)
    h = layers.LSTM(6, return_sequences=True)(x)
    c = layers.Attention()([h, h], use_causal_mask=True)
    c2 = layers.AdditiveAttention()([h, layers.Dense(6)(x)])
    o = layers.Concatenate()([c, c2])
    tok = rng.integers(1, 20, size=(3, 6)).astype("int32")
    tok[0, 4:] = 0
    tok[1, 2:] = 0
    write_case("layers_attention_masked_queries", "Attention (causal) and AdditiveAttention on masked "
               "sequences: the output at a padded query step is zeros; Concatenate and GlobalMaxPooling1D after",
               keras.Model(ids, [o, layers.GlobalMaxPooling1D()(o)]), [[tok]], seed=10, h5=True)

    # A MultiHeadAttention removes its inputs' masks (Keras 3 sets them to None in its call):
    # an Attention run after it on the same tensors sees none.
    i1 = keras.Input((None,), dtype="int32")
    i2 = keras.Input((None,), dtype="int32")
    e1 = layers.Embedding(20, 6, mask_zero=True)(i1)
    e2 = layers.Embedding(20, 6, mask_zero=True)(i2)
    pooled = layers.GlobalAveragePooling1D()(layers.MultiHeadAttention(num_heads=2, key_dim=3)(e1, e2))
    att = layers.Attention()([e1, e2])
    t1 = rng.integers(1, 20, size=(2, 5)).astype("int32")
    t1[0, 3:] = 0
    t2 = rng.integers(1, 20, size=(2, 4)).astype("int32")
    t2[1, 2:] = 0
    write_case("layers_mha_removes_input_masks", "Embedding(mask_zero) pair -> MultiHeadAttention (query and "
               "value masks) -> GlobalAveragePooling1D, and an Attention on the same tensors after it, which "
               "Keras runs without masks", keras.Model([i1, i2], [att, pooled]), [[t1, t2]], seed=11)

    # Training through the operations: their gradients against Keras's.
    x = keras.Input((5, 3))
    h = layers.LSTM(6, return_sequences=True)(x)
    w = keras.ops.softmax(layers.Dense(1)(h), axis=1)
    pooled = keras.ops.stack([keras.ops.sum(w * h, axis=1), keras.ops.max(h[:, ::2, :], axis=1)], axis=1)
    y = layers.Dense(2)(layers.Flatten()(pooled - keras.ops.mean(pooled, axis=1, keepdims=True)))
    xt = floats(rng, 6, 5, 3)
    yt = floats(rng, 6, 2)
    write_case("train_ops_pooling_adam", "training: LSTM(rs) -> softmax attention weights (ops) -> sum and "
               "max-over-strided-steps pooling stacked -> centred -> Flatten -> Dense, mse, Adam(0.01), "
               "2 epochs, batch 2", keras.Model(x, y), [[floats(rng, 2, 5, 3)]], seed=7,
               train=fit_and_record(xt, yt, "mse", keras.optimizers.Adam(0.01), 2, 2))

    # The activation functions as operations, with their settings.
    x = keras.Input((4, 5))
    h = layers.Dense(5)(x)
    y = ops.concatenate([ops.leaky_relu(h), ops.leaky_relu(h, negative_slope=0.05), ops.elu(h, alpha=0.7),
                         ops.elu(h), ops.gelu(h), ops.gelu(h, approximate=False), ops.log_softmax(h),
                         ops.relu6(h * 4.0), ops.hard_silu(h * 3.0), ops.softsign(h), ops.selu(h), ops.silu(h)],
                        axis=-1)
    write_case("ops_activation_functions", "keras.ops leaky_relu and elu with and without their settings, "
               "gelu approximate (the operation's default) and exact, log_softmax, relu6, hard_silu, softsign, "
               "selu, silu", keras.Model(x, y), [[floats(rng, 2, 4, 5) * 2]], seed=9)

    # Training BatchNormalization on a masked sequence (statistics over the real steps only)
    # beside an activity penalty (divided by the batch size in Keras 3).
    x = keras.Input((7, 3))
    h = layers.LSTM(4, return_sequences=True)(layers.Masking(0.0)(x))
    h = layers.BatchNormalization(center=False, momentum=0.7)(h)
    h = layers.ReLU(max_value=1.2, negative_slope=0.1, threshold=0.05)(h)
    h = layers.ActivityRegularization(l1=0.01, l2=0.02)(h)
    y = layers.GlobalAveragePooling1D()(h)
    xt = floats(rng, 6, 7, 3)
    xt[0, 4:] = 0
    xt[3, 2:] = 0
    yt = floats(rng, 6, 4)
    xi = floats(rng, 2, 7, 3)
    xi[1, 5:] = 0
    write_case("train_masked_batchnorm_activity_penalty", "training: Masking -> LSTM(rs) -> BatchNormalization "
               "(batch statistics over the real steps) -> ReLU(max_value, negative_slope, threshold) -> "
               "ActivityRegularization(l1, l2) -> masked GlobalAveragePooling1D, mae, SGD(nesterov), batch 3",
               keras.Model(x, y), [[xi]], seed=12,
               train=fit_and_record(xt, yt, "mae", keras.optimizers.SGD(0.2, momentum=0.9, nesterov=True), 3, 2))

    # return_attention_scores: the weights as a second output, used downstream and trained.
    x = keras.Input((5, 3))
    h = layers.LSTM(4, return_sequences=True)(x)
    o, s = layers.Attention(score_mode="concat")([h, h], return_attention_scores=True, use_causal_mask=True)
    o2, s2 = layers.MultiHeadAttention(2, 2)(h, o, return_attention_scores=True)
    y = layers.Dense(2)(layers.Concatenate()([layers.Flatten()(s), layers.GlobalAveragePooling1D()(o2),
                                              layers.Flatten()(s2)]))
    xt = floats(rng, 6, 5, 3)
    yt = floats(rng, 6, 2)
    write_case("train_attention_scores_returned", "training: LSTM(rs) -> Attention(concat, causal, "
               "return_attention_scores) -> MultiHeadAttention(return_attention_scores) on [h, o], both "
               "weights flattened beside the pooled output -> Dense, mse, Adam(0.02)", keras.Model(x, y),
               [[floats(rng, 2, 5, 3)]], seed=5, train=fit_and_record(xt, yt, "mse", keras.optimizers.Adam(0.02), 3, 2))
    ids = keras.Input((None,), dtype="int32")
    e = layers.Embedding(9, 4, mask_zero=True)(ids)
    o, s = layers.AdditiveAttention()([e, e], return_attention_scores=True)
    o2, s2 = layers.MultiHeadAttention(2, 3)(e, e, return_attention_scores=True, use_causal_mask=True)
    tok = rng.integers(1, 9, (3, 5)).astype("int32")
    tok[0, 3:] = 0
    tok[2, 1:] = 0
    write_case("attention_scores_returned_masked", "AdditiveAttention and MultiHeadAttention (causal) with "
               "return_attention_scores on masked tokens: outputs and weights", keras.Model(ids, [o, s, o2, s2]),
               [[tok]], seed=13, h5=True)

    # Lengths known only at run time through padding, a strided causal convolution,
    # upsampling (2*((T+4)/2)), cropping and a pooling whose stride exceeds its window.
    x = keras.Input((None, 3))
    h = layers.Conv1D(5, 3, strides=2, padding="causal", activation="gelu")(layers.ZeroPadding1D((2, 1))(x))
    h = layers.Cropping1D((1, 2))(layers.UpSampling1D(2)(h))
    h = layers.MaxPooling1D(2, strides=3)(layers.GRU(4, reset_after=False, return_sequences=True)(h))
    y = layers.GlobalAveragePooling1D()(h)
    xt = floats(rng, 6, 13, 3)
    yt = floats(rng, 6, 4)
    write_case("train_symbolic_length_upsampling", "training on a length known only at run time: "
               "ZeroPadding1D -> Conv1D(strides 2, causal, gelu) -> UpSampling1D -> Cropping1D -> "
               "GRU(reset_after=False) -> MaxPooling1D(2, strides 3) -> GlobalAveragePooling1D, huber, Adam",
               keras.Model(x, y), [[floats(rng, 2, 13, 3)]], seed=14,
               train=fit_and_record(xt, yt, "huber", keras.optimizers.Adam(0.01), 3, 2))

    # Adamax, Nadam and AdamW (decoupled weight decay, with clipnorm) on an Embedding whose
    # tokens repeat in a batch: Keras on TensorFlow sums the sparse gradient's slices'
    # squares (Nadam) and absolute values (Adamax) one by one.
    for name, opt in [("adamax", keras.optimizers.Adamax(0.05)), ("nadam", keras.optimizers.Nadam(0.05)),
                      ("adamw", keras.optimizers.AdamW(0.05, weight_decay=0.1, clipnorm=0.5))]:
        ids = keras.Input((6,), dtype="int32")
        y = layers.Dense(2)(layers.LSTM(3)(layers.Embedding(8, 4)(ids)))
        tok = rng.integers(0, 4, (6, 6)).astype("int32")
        yt = floats(rng, 6, 2)
        write_case(f"train_embedding_{name}", f"training: Embedding (repeated tokens) -> LSTM -> Dense, mse, "
                   f"{type(opt).__name__}, 3 epochs, batch 3", keras.Model(ids, y), [[tok[:2]]], seed=3,
                   train=fit_and_record(tok, yt, "mse", opt, 3, 3))


if __name__ == "__main__":
    sys.exit(main())
