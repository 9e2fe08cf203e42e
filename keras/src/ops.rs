//! Keras 3 *operations* recorded between layers: config entries whose `module` is a
//! `keras.src.ops` module (`h[:, -3:, :]` is `GetItem`, `x * 2.0` is `Multiply`,
//! `keras.ops.tanh` is `Tanh`). An `Add` there is the operation, not the layer. Each becomes
//! the language's own form: a time slice, a merge layer, an activation, a `Rescaling` for
//! arithmetic with a number; anything else is a named error.

use serde_json::Value as J;

use crate::error::{ImportError, Result};

/// Whether a config entry is an operation rather than a layer.
pub(crate) fn is_op(l: &J) -> bool {
    l["module"].as_str().is_some_and(|m| m.starts_with("keras.src.ops"))
}

fn is_tensor(v: &J) -> bool {
    v["class_name"].as_str() == Some("__keras_tensor__")
}

/// The `.seq` expression of operation `class` (named `lname`, configured by `config`) at
/// `node`, whose tensor arguments are the variables `tensors` (in the order they appear).
pub(crate) fn expr(class: &str, lname: &str, config: &J, node: &J, tensors: &[String]) -> Result<String> {
    let unsupported = |what: String| ImportError::Unsupported { layer: lname.into(), what };
    let args = node["args"].as_array().cloned().unwrap_or_default();
    let name = format!("name=\"{lname}\"");
    let numbers: Vec<f64> = args.iter().filter_map(J::as_f64).collect();
    let arith = |scale: f64, offset: f64| {
        format!("Rescaling(scale={scale:?}, offset={offset:?}, {name})({})", tensors[0])
    };
    match (class, tensors.len(), numbers.as_slice()) {
        ("GetItem", 1, _) => slice(&args[1..], &tensors[0]).ok_or_else(|| {
            unsupported(format!(
                "the index {} (only a slice or an index of the time axis)",
                J::Array(args[1..].to_vec())
            ))
        }),
        ("Multiply", 1, [c]) => Ok(arith(*c, 0.0)),
        ("Add", 1, [c]) => Ok(arith(1.0, *c)),
        ("Subtract", 1, [c]) if is_tensor(&args[0]) => Ok(arith(1.0, -c)),
        ("Subtract", 1, [c]) => Ok(arith(-1.0, *c)),
        ("Divide" | "TrueDivide", 1, [c]) if is_tensor(&args[0]) && *c != 0.0 => Ok(arith(1.0 / c, 0.0)),
        ("Add" | "Subtract" | "Multiply" | "Maximum" | "Minimum", 2, []) => {
            Ok(format!("{class}({name})([{}])", tensors.join(", ")))
        }
        ("Concatenate", n, _) if n >= 2 => {
            let axis = config["axis"]
                .as_i64()
                .or(node["kwargs"]["axis"].as_i64())
                .or(args.get(1).and_then(J::as_i64))
                .unwrap_or(0);
            Ok(format!("Concatenate(axis={axis}, {name})([{}])", tensors.join(", ")))
        }
        ("Gelu", 1, []) if node["kwargs"]["approximate"].as_bool() == Some(true) => {
            Ok(format!("Activation(\"gelu_approximate\", {name})({})", tensors[0]))
        }
        (_, 1, []) => {
            let act = crate::convert::snake_case(class);
            let act = if act == "exp" { "exponential".to_string() } else { act };
            match seqmodel_runtime::ir::Activation::from_name(&act) {
                Some(a)
                    if node["kwargs"]
                        .as_object()
                        .is_none_or(|k| k.iter().all(|(k, v)| k == "approximate" && v == false))
                        && config.as_object().is_none_or(|c| c.keys().all(|k| k == "name")) =>
                {
                    Ok(format!("Activation(\"{}\", {name})({})", a.name(), tensors[0]))
                }
                _ => Err(unsupported(format!("the Keras operation `{class}`"))),
            }
        }
        _ => Err(unsupported(format!("the Keras operation `{class}` on these arguments"))),
    }
}

/// `x[a:b]` or `x[i]` for an index that selects along the time axis only (every other
/// axis a full slice).
fn slice(index: &[J], x: &str) -> Option<String> {
    let items: Vec<J> = match index {
        [J::Array(items)] => items.clone(),
        [one] => vec![one.clone()],
        _ => return None,
    };
    let full = |v: &J| {
        v["class_name"].as_str() == Some("__slice__")
            && ["start", "stop", "step"].iter().all(|k| v["config"][k].is_null())
    };
    let (batch, time, rest) = match items.as_slice() {
        [b, t, rest @ ..] => (b, t, rest),
        _ => return None,
    };
    if !full(batch) || !rest.iter().all(full) {
        return None;
    }
    if let Some(i) = time.as_i64() {
        return Some(format!("{x}[{i}]"));
    }
    let c = &time["config"];
    if time["class_name"].as_str() != Some("__slice__")
        || !(c["step"].is_null() || c["step"].as_i64() == Some(1))
    {
        return None;
    }
    let bound = |v: &J| v.as_i64().map(|i| i.to_string()).unwrap_or_default();
    Some(format!("{x}[{}:{}]", bound(&c["start"]), bound(&c["stop"])))
}
