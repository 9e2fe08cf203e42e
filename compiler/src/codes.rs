//! Every diagnostic code, with one meaning each and a long explanation (`seqc explain CODE`,
//! like `rustc --explain`). Codes start with `SM` (seqmodel) so they are never mistaken for
//! rustc's `E` codes; the hundreds group them: 0xx syntax, 1xx names and calls, 2xx layer
//! arguments, 3xx shapes, 4xx models, 9xx internal.

/// One diagnostic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The code, `SM0302`.
    pub id: &'static str,
    /// What it means, in one line.
    pub title: &'static str,
    /// Why it is an error and how to fix it, with an example.
    pub explanation: &'static str,
}

/// Looks a code up (case-insensitive; `0302` and `E0302` find `SM0302` too).
///
/// ```
/// let c = seqmodel_compiler::codes::explain("SM0302").unwrap();
/// assert!(c.title.contains("sequence"));
/// assert_eq!(seqmodel_compiler::codes::explain("e0302"), Some(c));
/// ```
pub fn explain(id: &str) -> Option<&'static Code> {
    let id = id.trim().to_ascii_uppercase();
    let digits = id.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    CODES.iter().find(|c| c.id[2..] == *digits)
}

/// Every code's explanation as one Markdown page (`docs/codes.md`, which editors link to from
/// each diagnostic; a test keeps the file equal to this).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Diagnostic codes\n\nEvery error seqmodel reports has a code; `seqc explain CODE` prints the same text.\n",
    );
    for c in CODES {
        out.push_str(&format!("\n## {}\n\n**{}**\n\n", c.id.to_ascii_lowercase(), c.title));
        for para in c.explanation.split("\n\n") {
            if para.lines().any(|l| l.starts_with("    ")) {
                out.push_str(&format!("```text\n{}\n```\n\n", para));
            } else {
                out.push_str(&format!("{para}\n\n"));
            }
        }
    }
    out.trim_end().to_string() + "\n"
}

/// Where a code's explanation is on the web: `docs/codes.md` of the repository, at its
/// heading.
pub fn url(id: &str) -> String {
    format!("{}/blob/main/docs/codes.md#{}", env!("CARGO_PKG_REPOSITORY"), id.to_ascii_lowercase())
}

macro_rules! codes {
    ($($id:literal => $title:literal, $text:literal;)*) => {
        /// Every code, in order.
        pub static CODES: &[Code] = &[$(Code { id: $id, title: $title, explanation: $text }),*];
    };
}

codes! {
    "SM0001" => "syntax error",
    "The text is not a `.seq` program at this point: the message says what was expected.\n\nWrong:\n    model M(x: [T, 3]) -> [4] { x -> LSTM(4 }\nRight:\n    model M(x: [T, 3]) -> [4] { x -> LSTM(4) }";
    "SM0101" => "unknown name",
    "A name is neither a variable of this model, a model of the file, nor a layer type.\n\nWrong:\n    model M(x: [T, 3]) -> [4] { y -> LSTM(4) }\nRight:\n    model M(x: [T, 3]) -> [4] { x -> LSTM(4) }";
    "SM0102" => "unknown dimension",
    "A dimension used in a type or as a model's dimension argument is not declared: dimensions come from the model's input types or its `<...>` parameters.\n\nWrong:\n    model M(x: [4]) -> [N, 4] { x -> RepeatVector(N) }\nRight:\n    model M<N>(x: [4]) -> [N, 4] { x -> RepeatVector(N) }";
    "SM0103" => "dimension arguments given to a layer",
    "Only models take `<...>` dimension arguments; layers take their sizes as constructor arguments.\n\nWrong:\n    x -> RepeatVector<N>()\nRight:\n    x -> RepeatVector(N)";
    "SM0104" => "unexpected keyword argument in a call",
    "A layer or model was called with a keyword it does not take; only recurrent layers take `initial_state`.\n\nWrong:\n    Dense(4)(x, initial_state=[h])\nRight:\n    LSTM(4)(x, initial_state=[h, c])";
    "SM0105" => "calling something that is not a layer or a model",
    "A `(` after an expression continues it as a call. If a new statement starts there, end the previous one with `;`.\n\nWrong:\n    h = x -> LSTM(4)\n    (h)\nRight:\n    h = x -> LSTM(4);\n    h";
    "SM0106" => "layer called without its input",
    "A layer instance must be applied to a tensor.\n\nWrong:\n    LSTM(4)()\nRight:\n    LSTM(4)(x)";
    "SM0107" => "slicing something that is not a tensor",
    "Slices and indexes (`h[-3:]`, `h[-1]`, `h[:, ::2]`) apply to tensors only.\n\nWrong:\n    LSTM[-1]\nRight:\n    h = x -> LSTM(4, return_sequences=true); h[-1]";
    "SM0108" => "applying something that is not a layer",
    "The right side of `->` must be a constructed layer or a model; a bare layer type needs its arguments.\n\nWrong:\n    x -> LSTM\nRight:\n    x -> LSTM(4)";
    "SM0109" => "two layers with one name",
    "Layer names (`name=\"...\"`) name weights, so two different layers cannot share one. To share weights, assign the layer once and call it twice.\n\nWrong:\n    a -> Dense(4, name=\"d\"); b -> Dense(4, name=\"d\")\nRight:\n    d = Dense(4); d(a); d(b)";
    "SM0201" => "too many positional arguments",
    "Only the leading arguments of a layer may be positional (Keras's order); pass the others by name.\n\nWrong:\n    LSTM(4, \"tanh\", true)\nRight:\n    LSTM(4, \"tanh\", return_sequences=true)";
    "SM0202" => "unknown layer argument",
    "The layer has no such constructor argument (the message lists those it accepts).\n\nWrong:\n    LSTM(4, return_sequence=true)\nRight:\n    LSTM(4, return_sequences=true)";
    "SM0203" => "argument given twice",
    "Each argument may be given once.\n\nWrong:\n    Dense(4, units=5)\nRight:\n    Dense(5)";
    "SM0204" => "argument of the wrong kind",
    "The value does not fit the argument (a positive integer, a rate in [0, 1), `true`/`false`, ...).\n\nWrong:\n    Dropout(1.5)\nRight:\n    Dropout(0.5)";
    "SM0205" => "missing required argument",
    "The layer needs this argument (Keras has no default for it).\n\nWrong:\n    Dense()\nRight:\n    Dense(4)";
    "SM0206" => "unknown activation",
    "The activation is not one of Keras's (the message lists them).\n\nWrong:\n    Dense(4, activation=\"rel\")\nRight:\n    Dense(4, activation=\"relu\")";
    "SM0207" => "wrapper around the wrong layer",
    "`Bidirectional` wraps a recurrent layer; `TimeDistributed` wraps a layer or a model.\n\nWrong:\n    Bidirectional(Dense(4))\nRight:\n    Bidirectional(LSTM(4))";
    "SM0208" => "argument values that do not fit together",
    "Each value fits its argument, but not the others: the channels must split into the groups, a permutation must name every axis once, a target shape may hold one `-1`.\n\nWrong:\n    Conv1D(6, 3, groups=4)\nRight:\n    Conv1D(8, 3, groups=4)";
    "SM0301" => "not a tensor where a tensor is needed",
    "A layer got something other than one tensor (a list where one tensor is expected, or the reverse for merge layers).\n\nWrong:\n    Add()(a)\nRight:\n    Add()([a, b])";
    "SM0302" => "a sequence is needed",
    "Recurrent layers, Masking and time layers need a sequence `[T, features]`. A recurrent layer without `return_sequences=true` gives only its last step.\n\nWrong:\n    x -> LSTM(16) -> LSTM(4)\nRight:\n    x -> LSTM(16, return_sequences=true) -> LSTM(4)";
    "SM0303" => "feature size not fixed",
    "Weighted layers need a fixed number of input features (the last dimension) to size their weights.\n\nWrong:\n    model M(x: [T, F]) -> [T, 4] { x -> Dense(4) }\nRight:\n    model M(x: [T, 3]) -> [T, 4] { x -> Dense(4) }";
    "SM0304" => "the wrong element type: integer ids or booleans where floats are needed, or the reverse",
    "Token ids (`of i32`) go through an `Embedding` first; `Embedding` needs ids. Booleans (`of bool`, what a comparison such as `NotEqual(0)` gives) are masks: pass them as a call's `mask=`, combine them with `LogicalAnd`, or turn them into floats with `Cast(\"float32\")`.\n\nWrong:\n    model M(x: [T] of i32) -> [4] { x -> LSTM(4) }\nRight:\n    model M(x: [T] of i32) -> [4] { x -> Embedding(100, 8) -> LSTM(4) }";
    "SM0305" => "slice or index out of range",
    "A slice, an index or a crop asks for positions the tensor does not have, or leaves none; over a length known only at run time, a slice must be sizable from its bounds (both counted from one end, or from the front to the back).\n\nWrong:\n    model M(x: [4, 2]) -> [2] { h = x -> LSTM(2, return_sequences=true); h[7] }\nRight:\n    model M(x: [4, 2]) -> [2] { h = x -> LSTM(2, return_sequences=true); h[3] }";
    "SM0306" => "wrong initial state",
    "`initial_state` takes a list with one `[units]` tensor per state: `[h, c]` for LSTM, `[h]` for GRU and SimpleRNN.\n\nWrong:\n    LSTM(4)(x, initial_state=[h])\nRight:\n    LSTM(4)(x, initial_state=[h, c])";
    "SM0307" => "wrong number of merge inputs",
    "Merge layers take at least two tensors; `Subtract` exactly two.\n\nWrong:\n    Subtract()([a, b, c])\nRight:\n    Subtract()([a, b])";
    "SM0308" => "shared layer used with different sizes",
    "A layer instance has one set of weights, so every input it is applied to must have the feature size it was built for.\n\nWrong:\n    d = Dense(4); d(a3); d(b5)\nRight:\n    Dense(4)(a3); Dense(4)(b5)";
    "SM0309" => "merge inputs of different shapes",
    "Element-wise merges (`Add`, `Multiply`, ...) need inputs of one shape. Two different dimension names are different sizes: use one name if they are always equal.\n\nWrong:\n    model M(a: [T, 4], b: [S, 4]) -> [T, 4] { Add()([a, b]) }\nRight:\n    model M(a: [T, 4], b: [T, 4]) -> [T, 4] { Add()([a, b]) }";
    "SM0310" => "axis out of range",
    "Keras counts the batch axis: -1 is the last axis, 1 the first after the batch; 0 (the batch) cannot be concatenated, stacked or reduced.\n\nWrong:\n    Concatenate(axis=3)([a, b])   // a, b: [T, 4]\nRight:\n    Concatenate(axis=-1)([a, b])";
    "SM0311" => "Concatenate inputs do not line up",
    "Concatenated tensors need one rank and equal sizes on every axis but the concatenated one.\n\nWrong:\n    Concatenate()([a, b])   // a: [5, 4], b: [6, 2]\nRight:\n    Concatenate(axis=1)([a, c])   // a: [5, 4], c: [6, 4]";
    "SM0312" => "Concatenate of two run-time lengths",
    "The checker cannot name the sum of two sizes that are both known only at run time.\n\nWrong:\n    model M(a: [T, 2], b: [S, 2]) -> [_, 2] { Concatenate(axis=1)([a, b]) }\nRight:\n    model M(a: [T, 2], b: [5, 2]) -> [T+5, 2] { Concatenate(axis=1)([a, b]) }";
    "SM0313" => "RepeatVector needs a vector",
    "`RepeatVector(n)` repeats a vector `[features]` over `n` steps; a sequence has a time axis already.\n\nWrong:\n    x -> LSTM(4, return_sequences=true) -> RepeatVector(3)\nRight:\n    x -> LSTM(4) -> RepeatVector(3)";
    "SM0314" => "size beyond the supported range",
    "A dimension, a layer's size or a count is above 2^31 - 1, or a layer's weight would hold more than 2^32 values: sizes this large cannot be a real model, and arithmetic on them would wrap.\n\nWrong:\n    x -> Dense(4294967296)\nRight:\n    x -> Dense(4096)";
    "SM0315" => "sequence shorter than a window",
    "A convolution or pooling window with `padding=\"valid\"` must fit in the sequence.\n\nWrong:\n    model M(x: [2, 3]) -> [1, 4] { x -> Conv1D(4, 3) }\nRight:\n    model M(x: [3, 3]) -> [1, 4] { x -> Conv1D(4, 3) }";
    "SM0317" => "dimension needed at compile time",
    "The layer's output shape depends on the exact size of every input dimension (Reshape, Flatten), so none may be known only at run time.\n\nWrong:\n    model M(x: [T, 3]) -> [_] { x -> Flatten() }\nRight:\n    model M(x: [4, 3]) -> [12] { x -> Flatten() }";
    "SM0318" => "reshape to a different number of values",
    "The target shape must hold exactly the values of the input (one `-1` takes whatever is left).\n\nWrong:\n    model M(x: [4, 6]) -> [5, 5] { x -> Reshape((5, 5)) }\nRight:\n    model M(x: [4, 6]) -> [12, 2] { x -> Reshape((-1, 2)) }";
    "SM0319" => "attention inputs that do not line up",
    "An attention layer scores each query step against each key step: the query and the key need the same features, the key and the value the same steps.\n\nWrong:\n    Attention()([q, v])   // q: [T, 4], v: [S, 6]\nRight:\n    Attention()([Dense(6)(q), v])";
    "SM0320" => "a mask that does not fit its input",
    "A call's `mask=` is a boolean `[T]` with one entry per step of the layer's input sequence (`true`: a real step), as a comparison gives it; `mask=None` removes the input's mask. For a layer called on a list, `mask=` is a list with one entry per input.\n\nWrong:\n    LSTM(4)(x, mask=ids)   // ids: [T] of i32\nRight:\n    LSTM(4)(x, mask=NotEqual(0)(ids))";
    "SM0321" => "boolean model input",
    "A model's inputs are floats or integer ids; a mask is computed inside the model from them (a boolean input cannot be passed).\n\nWrong:\n    model M(x: [T, 3], m: [T] of bool) -> [4] { LSTM(4)(x, mask=m) }\nRight:\n    model M(x: [T, 3]) -> [4] { LSTM(4)(x, mask=Any(axis=-1)(NotEqual(0.0)(x))) }";
    "SM0401" => "wrong number of model inputs",
    "A model call gives one tensor per declared input.\n\nWrong:\n    Pair(x)   // model Pair(a: [4], b: [4])\nRight:\n    Pair(x, y)";
    "SM0402" => "model input of the wrong type",
    "A tensor passed to a model does not have the declared type of that input. Two different dimension names are different sizes.\n\nWrong:\n    Enc(x)   // model Enc(x: [T, 2]), x: [T, 3]\nRight:\n    Enc(x)   // x: [T, 2]";
    "SM0403" => "wrong number of dimension arguments",
    "A model call gives at most one dimension per `<...>` parameter.\n\nWrong:\n    Decoder<T, 4>(z)   // model Decoder<T>\nRight:\n    Decoder<T>(z)";
    "SM0404" => "model without output",
    "A model's body ends with an expression: its output.\n\nWrong:\n    model M(x: [T, 2]) -> [4] { h = x -> LSTM(4); }\nRight:\n    model M(x: [T, 2]) -> [4] { h = x -> LSTM(4); h }";
    "SM0405" => "destructuring the wrong number of values",
    "`a, b = ...` needs a value with exactly as many parts; a recurrent layer gives its states only with `return_state=true`.\n\nWrong:\n    out, h, c = LSTM(4)(x)\nRight:\n    out, h, c = LSTM(4, return_state=true)(x)";
    "SM0406" => "model output that is not tensors",
    "A model returns tensors (or a tuple of tensors), not layers or models.\n\nWrong:\n    model M(x: [4]) -> [4] { Dense(4) }\nRight:\n    model M(x: [4]) -> [4] { x -> Dense(4) }";
    "SM0407" => "wrong number of model outputs",
    "The body gives a different number of outputs than the declaration.\n\nWrong:\n    model M(x: [T, 2]) -> ([4], [4]) { x -> LSTM(4) }\nRight:\n    model M(x: [T, 2]) -> ([4], [4]) { o, h, c = LSTM(4, return_state=true)(x); (o, h) }";
    "SM0408" => "model output of the wrong type",
    "The body's output does not have the declared type. A named dimension means any size: a body that fixes it (a `RepeatVector(6)` returned as `[T, 1]`) needs the number in the declaration.\n\nWrong:\n    model M(x: [T, 4]) -> [T, 1] { x -> LSTM(8) -> RepeatVector(6) -> LSTM(1, return_sequences=true) }\nRight:\n    model M(x: [T, 4]) -> [6, 1] { x -> LSTM(8) -> RepeatVector(6) -> LSTM(1, return_sequences=true) }";
    "SM0409" => "recursive model",
    "Models are inlined where they are called, so a model cannot call itself.\n\nWrong:\n    model M(x: [4]) -> [4] { M(x) }\nRight:\n    model M(x: [4]) -> [4] { x -> Dense(4) }";
    "SM0410" => "stateful layer without a batch size",
    "A stateful layer keeps one state per batch row, so the model fixes the batch size.\n\nWrong:\n    model G(x: [T, 3]) -> [T, 3] { x -> LSTM(3, stateful=true, return_sequences=true) }\nRight:\n    model G(x: [T, 3]) -> [T, 3] where batch = 1 { x -> LSTM(3, stateful=true, return_sequences=true) }";
    "SM0411" => "conflicting batch sizes",
    "Models called together must agree on `where batch = N`.\n\nWrong:\n    model A(x: [3]) -> [3] where batch = 2 { ... }   // called from a model with batch = 4\nRight:\n    the same `batch` everywhere";
    "SM0412" => "unknown setting",
    "The only setting after `where` is `batch = N`.\n\nWrong:\n    model M(x: [3]) -> [3] where batches = 2 { x }\nRight:\n    model M(x: [3]) -> [3] where batch = 2 { x }";
    "SM0413" => "called model does not check with these inputs",
    "A generic model checks on its own but fails with the sizes this call gives; the note names the inner error.\n\nWrong:\n    Crop<T>(x)   // Crop removes 5 steps, x has 3\nRight:\n    Crop<T>(y)   // y has more than 5 steps";
    "SM0414" => "model defined twice",
    "Model names are unique in a file.\n\nWrong:\n    model M(...) { ... }  model M(...) { ... }\nRight:\n    model M(...) { ... }  model N(...) { ... }";
    "SM0415" => "model named like a layer type",
    "A model cannot take the name of a layer type (`LSTM`, `Dense`, ...).\n\nWrong:\n    model Dense(x: [4]) -> [4] { x }\nRight:\n    model Head(x: [4]) -> [4] { x }";
    "SM0416" => "input declared twice",
    "Input names are unique within a model.\n\nWrong:\n    model M(x: [4], x: [4]) -> [4] { x }\nRight:\n    model M(x: [4], y: [4]) -> [4] { Add()([x, y]) }";
    "SM0417" => "zero-sized dimension",
    "A declared dimension is at least 1.\n\nWrong:\n    model M(x: [0, 4]) -> [4] { x -> LSTM(4) }\nRight:\n    model M(x: [T, 4]) -> [4] { x -> LSTM(4) }";
    "SM0418" => "model calls nested too deep",
    "Each model call is inlined into its caller, so a chain of models each calling the next is checked once per level; more than 256 levels is refused rather than left to exhaust time or stack.\n\nWrong:\n    model M300(x: [T, 3]) -> [T, 3] { M299(x) }   // ... down to M0\nRight:\n    model Deep(x: [T, 3]) -> [T, 3] { x -> Dense(3) -> Dense(3) }";
    "SM0999" => "internal compiler error",
    "The checked program breaks one of the IR's invariants: a bug in seqmodel, not in the model. Please report it with the model that triggers it.";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code used by the compiler is registered once, and every registered code is used.
    #[test]
    fn the_registry_and_the_sources_agree() {
        let mut ids: Vec<&str> = CODES.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "a code is registered twice");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut used = std::collections::BTreeSet::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("codes.rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for (i, _) in text.match_indices("\"SM") {
                        let code = &text[i + 1..i + 7];
                        assert!(explain(code).is_some(), "{code} in {} is not registered", p.display());
                        used.insert(code.to_string());
                    }
                }
            }
        }
        for c in CODES {
            assert!(used.contains(c.id), "{} is registered but never used", c.id);
            assert!(c.explanation.len() > 40, "{} needs an explanation", c.id);
        }
    }
}
