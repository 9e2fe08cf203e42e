//! Keras 3 *operations* recorded between layers: config entries whose `module` is a
//! `keras.src.ops` module (`h[:, -3:, :]` is `GetItem`, `x * 2.0` is `Multiply`,
//! `keras.ops.tanh` is `Tanh`, `keras.ops.not_equal(ids, 0)` is `NotEqual`). An `Add` there
//! is the operation, not the layer. Each becomes the language's own form: a slice, a merge
//! layer (broadcasting), an activation, a `Rescaling` for arithmetic with a number, a
//! reduction (`Mean(axis=1)`), `Stack`, a comparison or logic (`NotEqual(0)`), `Cast`,
//! `ExpandDims`; anything else is a named error.
//!
//! Keras's operations pass no mask on. Where the form chosen is a layer that does (an
//! activation, a merge, `Rescaling`), the call says `mask=None` when a mask may reach it.

use serde_json::Value as J;

use crate::error::{ImportError, Result};

/// The class names that Keras 3.15 gives both to an operation (`keras.src.ops`) and to a
/// layer the language knows (listed by comparing the two sets of classes).
#[cfg(feature = "import")]
const NAMES_OF_OPS_AND_LAYERS: &[&str] = &[
    "Add",
    "All",
    "Any",
    "Average",
    "Concatenate",
    "Divide",
    "Equal",
    "ExpandDims",
    "Greater",
    "GreaterEqual",
    "Less",
    "LessEqual",
    "LogicalAnd",
    "LogicalNot",
    "LogicalOr",
    "LogicalXor",
    "Max",
    "Maximum",
    "Mean",
    "Min",
    "Minimum",
    "Multiply",
    "NotEqual",
    "Reshape",
    "Softmax",
    "Stack",
    "Subtract",
    "Sum",
];

/// Whether a config entry is an operation rather than a layer: its `module` is a
/// `keras.src.ops` one, or, in a legacy `.h5` (whose entries have no `module`), its config
/// lacks what every layer's has (`trainable`, `dtype`) and its class is not a layer that no
/// operation shares a name with (a hand-written `LSTM` entry without them stays a layer).
pub(crate) fn is_op(l: &J) -> bool {
    match l["module"].as_str() {
        Some(m) => m.starts_with("keras.src.ops"),
        None => {
            let c = &l["config"];
            let class = l["class_name"].as_str().unwrap_or_default();
            !layer_only(class) && c.is_object() && c.get("trainable").is_none() && c.get("dtype").is_none()
        }
    }
}

/// Whether `class` is a layer the language knows whose name no operation has.
#[cfg(feature = "import")]
fn layer_only(class: &str) -> bool {
    class == "InputLayer"
        || (seqmodel_compiler::layers::class(class).is_some() && !NAMES_OF_OPS_AND_LAYERS.contains(&class))
}

/// Without the compiler (weights only), the input layer; the configs Keras writes tell the
/// rest apart by `trainable` and `dtype`.
#[cfg(not(feature = "import"))]
fn layer_only(class: &str) -> bool {
    class == "InputLayer"
}

fn is_tensor(v: &J) -> bool {
    v["class_name"].as_str() == Some("__keras_tensor__")
}

/// An operation in the language: a callee applied to its input (or an expression), and
/// whether that form passes a mask on where Keras's operation would not.
pub(crate) struct OpText {
    callee: Option<String>,
    input: String,
    passes_mask: bool,
}

impl OpText {
    fn call(callee: String, input: String, passes_mask: bool) -> Self {
        OpText { callee: Some(callee), input, passes_mask }
    }

    /// The `.seq` expression; `masked`: a mask may reach the input (so a form that would
    /// pass it on drops it, as the operation does).
    pub(crate) fn text(&self, masked: bool) -> String {
        match &self.callee {
            Some(c) if masked && self.passes_mask => format!("{c}({}, mask=None)", self.input),
            Some(c) => format!("{c}({})", self.input),
            None => self.input.clone(),
        }
    }
}

/// The flipped comparison, for a number on the left (`0 < x` is `x > 0`).
fn flipped(class: &str) -> &str {
    match class {
        "Less" => "Greater",
        "LessEqual" => "GreaterEqual",
        "Greater" => "Less",
        "GreaterEqual" => "LessEqual",
        other => other,
    }
}

/// The language form of operation `class` (named `lname`, configured by `config`) at
/// `node`, whose tensor arguments are the variables `tensors` (in the order they appear).
pub(crate) fn expr(class: &str, lname: &str, config: &J, node: &J, tensors: &[String]) -> Result<OpText> {
    let unsupported = |what: String| ImportError::Unsupported { layer: lname.into(), what };
    let args = node["args"].as_array().cloned().unwrap_or_default();
    let name = format!("name=\"{lname}\"");
    let numbers: Vec<f64> = args.iter().filter_map(J::as_f64).collect();
    let first = tensors.first().cloned().unwrap_or_default();
    let list = || format!("[{}]", tensors.join(", "));
    let arith = |scale: f64, offset: f64| {
        OpText::call(format!("Rescaling(scale={scale:?}, offset={offset:?}, {name})"), first.clone(), true)
    };
    // A setting of the operation, from its config or its call.
    let setting = |key: &str, position: usize| -> J {
        [&config[key], &node["kwargs"][key], args.get(position).unwrap_or(&J::Null)]
            .into_iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(J::Null)
    };
    let axis = |position: usize| -> Result<i64> {
        match setting("axis", position) {
            J::Number(n) => n.as_i64().ok_or_else(|| unsupported(format!("the axis {n}"))),
            J::Array(a) if a.len() == 1 => {
                a[0].as_i64().ok_or_else(|| unsupported(format!("the axis {a:?}")))
            }
            J::Null => Err(unsupported(format!("`{class}` over every axis, the batch included"))),
            other => Err(unsupported(format!("`{class}` over the axes {other}"))),
        }
    };
    let keepdims = setting("keepdims", 2).as_bool().unwrap_or(false);
    Ok(match (class, tensors.len(), numbers.as_slice()) {
        ("GetItem", 1, _) => {
            OpText { callee: None, input: slice(&args[1..], &first, &unsupported)?, passes_mask: false }
        }
        ("Multiply", 1, [c]) => arith(*c, 0.0),
        ("Add", 1, [c]) => arith(1.0, *c),
        ("Subtract", 1, [c]) if is_tensor(&args[0]) => arith(1.0, -c),
        ("Subtract", 1, [c]) => arith(-1.0, *c),
        ("Divide" | "TrueDivide", 1, [c]) if is_tensor(&args[0]) && *c != 0.0 => arith(1.0 / c, 0.0),
        ("Negative", 1, []) => arith(-1.0, 0.0),
        // x² is x·x, bit for bit (as TensorFlow's pow computes a square).
        ("Square", 1, []) => OpText::call(format!("Multiply({name})"), format!("[{first}, {first}]"), true),
        ("Power", 1, [e]) if *e == 2.0 && is_tensor(&args[0]) => {
            OpText::call(format!("Multiply({name})"), format!("[{first}, {first}]"), true)
        }
        ("Add" | "Subtract" | "Multiply" | "Maximum" | "Minimum", 2, []) => {
            OpText::call(format!("{class}({name})"), list(), true)
        }
        ("Divide" | "TrueDivide", 2, []) => OpText::call(format!("Divide({name})"), list(), true),
        ("Concatenate", n, _) if n >= 2 => {
            let axis = setting("axis", 1).as_i64().unwrap_or(0);
            OpText::call(format!("Concatenate(axis={axis}, {name})"), list(), true)
        }
        ("Stack", n, _) if n >= 1 => OpText::call(
            format!("Stack(axis={}, {name})", setting("axis", 1).as_i64().unwrap_or(0)),
            list(),
            false,
        ),
        ("Mean" | "Sum" | "Max" | "Min" | "Any" | "All", 1, []) => {
            if !config["initial"].is_null() {
                return Err(unsupported(format!("`{class}` with an initial value")));
            }
            OpText::call(format!("{class}(axis={}, keepdims={keepdims}, {name})", axis(1)?), first, false)
        }
        ("Equal" | "NotEqual" | "Less" | "LessEqual" | "Greater" | "GreaterEqual", 1, [c]) => {
            let class = if is_tensor(&args[0]) { class } else { flipped(class) };
            OpText::call(format!("{class}({c:?}, {name})"), first, false)
        }
        ("Equal" | "NotEqual" | "Less" | "LessEqual" | "Greater" | "GreaterEqual", 2, []) => {
            OpText::call(format!("{class}({name})"), list(), false)
        }
        ("LogicalAnd" | "LogicalOr" | "LogicalXor", 2, []) => {
            OpText::call(format!("{class}({name})"), list(), false)
        }
        ("LogicalNot", 1, []) => OpText::call(format!("LogicalNot({name})"), first, false),
        // `keras.ops.convert_to_tensor` of a tensor (as Keras passes a mask on) is the tensor.
        ("ConvertToTensor", 1, [])
            if ["dtype", "sparse", "ragged"].iter().all(|k| config[*k].is_null() || config[*k] == false) =>
        {
            OpText { callee: None, input: first, passes_mask: false }
        }
        ("Cast", 1, []) => {
            let to = match setting("dtype", 1).as_str().or_else(|| config["dtype"]["config"]["name"].as_str())
            {
                Some("float32" | "float64" | "float16" | "bfloat16") => "float32",
                Some("bool") => "bool",
                Some("int32" | "int64") => "int32",
                other => return Err(unsupported(format!("a cast to {other:?}"))),
            };
            OpText::call(format!("Cast(\"{to}\", {name})"), first, false)
        }
        ("ExpandDims", 1, []) => OpText::call(format!("ExpandDims(axis={}, {name})", axis(1)?), first, false),
        ("Softmax", 1, []) => {
            let axis = setting("axis", 1).as_i64().unwrap_or(-1);
            OpText::call(format!("Softmax(axis={axis}, {name})"), first, true)
        }
        // keras.ops.gelu's `approximate` (True by default, unlike the activation's) is in the
        // operation's config (Keras 3.15) or its call's kwargs.
        ("Gelu", 1, []) if setting("approximate", 1).as_bool() != Some(false) => {
            OpText::call(format!("Activation(\"gelu_approximate\", {name})"), first, true)
        }
        ("LeakyRelu", 1, []) => {
            let slope = setting("negative_slope", 1).as_f64().unwrap_or(0.2);
            OpText::call(format!("LeakyReLU(negative_slope={slope:?}, {name})"), first, true)
        }
        ("Elu", 1, []) => {
            let alpha = setting("alpha", 1).as_f64().unwrap_or(1.0);
            OpText::call(format!("ELU(alpha={alpha:?}, {name})"), first, true)
        }
        (_, 1, []) => {
            let act = crate::convert::snake_case(class);
            let act = if act == "exp" { "exponential".to_string() } else { act };
            let default_setting = |k: &str, v: &J| {
                k == "name" || (k == "axis" && v == -1) || (k == "approximate" && v == false)
            };
            let plain =
                node["kwargs"].as_object().is_none_or(|k| k.iter().all(|(k, v)| default_setting(k, v)))
                    && config.as_object().is_none_or(|c| c.iter().all(|(k, v)| default_setting(k, v)));
            match seqmodel_runtime::ir::Activation::from_name(&act) {
                Some(a) if plain => {
                    OpText::call(format!("Activation(\"{}\", {name})", a.name()), first, true)
                }
                _ => return Err(unsupported(format!("the Keras operation `{class}`"))),
            }
        }
        _ => return Err(unsupported(format!("the Keras operation `{class}` on these arguments"))),
    })
}

/// `x[...]` for Keras's index (the batch axis first, which must be taken whole; an
/// ellipsis stands for whole axes, the batch among them when it comes first).
fn slice(index: &[J], x: &str, unsupported: &dyn Fn(String) -> ImportError) -> Result<String> {
    let items: Vec<J> = match index {
        [J::Array(items)] => items.clone(),
        [one] => vec![one.clone()],
        _ => return Err(unsupported(format!("the index {}", J::Array(index.to_vec())))),
    };
    let bad = |why: &str| unsupported(format!("the index {} ({why})", J::Array(items.clone())));
    let kind = |v: &J| v["class_name"].as_str().map(str::to_string);
    let full = |v: &J| {
        kind(v).as_deref() == Some("__slice__")
            && ["start", "stop", "step"].iter().all(|k| v["config"][k].is_null())
    };
    let rest = match items.split_first() {
        Some((first, _)) if kind(first).as_deref() == Some("__ellipsis__") => &items[..],
        Some((first, rest)) if full(first) => rest,
        Some(_) => return Err(bad("the batch axis must be taken whole")),
        None => return Err(bad("empty")),
    };
    let bound = |v: &J| -> Result<String> {
        match v {
            J::Null => Ok(String::new()),
            v => v.as_i64().map(|i| i.to_string()).ok_or_else(|| bad("bounds are integers")),
        }
    };
    let mut out = Vec::new();
    for item in rest {
        out.push(match (kind(item).as_deref(), item) {
            (Some("__ellipsis__"), _) => "...".to_string(),
            (Some("__slice__"), _) => {
                let c = &item["config"];
                let (start, stop) = (bound(&c["start"])?, bound(&c["stop"])?);
                match &c["step"] {
                    J::Null => format!("{start}:{stop}"),
                    step => match step.as_i64() {
                        Some(1) => format!("{start}:{stop}"),
                        Some(0) => return Err(bad("a step of 0")),
                        Some(s) => format!("{start}:{stop}:{s}"),
                        None => return Err(bad("steps are integers")),
                    },
                }
            }
            (_, J::Number(n)) if n.is_i64() => n.to_string(),
            (_, J::Null) => return Err(bad("a new axis: use keras.ops.expand_dims")),
            _ => return Err(bad("only slices, integers and the ellipsis")),
        });
    }
    // Whole axes at the end say nothing (`h[::2, :]` is `h[::2]`).
    while out.len() > 1 && out.last().is_some_and(|i| i == ":") {
        out.pop();
    }
    if out.is_empty() {
        return Ok(x.to_string());
    }
    Ok(format!("{x}[{}]", out.join(", ")))
}
