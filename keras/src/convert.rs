//! Keras model config (JSON) → `.seq` source, plus where each weight lives in Keras's files.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use serde_json::Value as J;

use crate::error::{ImportError, Result};

/// One weight: its seqmodel key and its path inside a `.keras` file's `model.weights.h5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightBinding {
    /// seqmodel key, `Model/layer/kernel`.
    pub key: String,
    /// Dataset path in the Keras 3 weights file, `layers/lstm/cell/vars/0`.
    pub keras_path: String,
}

/// The result of converting a config.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The `.seq` source.
    pub source: String,
    /// The name of the top model in it.
    pub main: String,
    /// Every weight, in Keras's order.
    pub weights: Vec<WeightBinding>,
    /// For legacy `.h5` files: each top-level layer name with its weights' keys, in Keras's
    /// `layer.weights` order (matched with the file's `weight_names`).
    pub legacy_layers: Vec<(String, Vec<String>)>,
    /// The regularizers of the model's layers (`layer `d`: kernel_regularizer`), which change
    /// nothing at inference and which seqmodel's training does not add to the loss.
    pub regularizers: Vec<String>,
}

/// Converts a Keras model config (`config.json`, or `model_config` of a legacy `.h5`).
pub fn convert(config: &J, keras_version: &str) -> Result<Converted> {
    convert_named(config, keras_version, None)
}

/// [`convert`], naming the top model `name_hint` (camel-cased) when Keras's name for it is
/// one Keras generated (`functional`, `sequential_2`, `model`).
pub fn convert_named(config: &J, keras_version: &str, name_hint: Option<&str>) -> Result<Converted> {
    let mut cx = Cx {
        defs: Vec::new(),
        model_names: HashSet::new(),
        keras2: keras_version.starts_with('2'),
        name_hint: name_hint.map(str::to_string),
    };
    let built = cx.model(config, "")?;
    let regularizers = regularizers(config);
    let mut source = String::from("// Imported from a Keras model by `seqc import`.\n");
    if !regularizers.is_empty() {
        source.push_str("// Training differs from Keras's: these regularizers are not added to the loss:\n");
        for r in &regularizers {
            source.push_str(&format!("// - {r}\n"));
        }
    }
    for d in &cx.defs {
        source.push('\n');
        source.push_str(d);
    }
    Ok(Converted {
        source,
        main: built.name,
        weights: built.weights,
        legacy_layers: built.legacy,
        regularizers,
    })
}

/// Every regularizer set in a config (nested models and wrapped layers included), as
/// ``layer `name`: key``, in the config's order.
fn regularizers(config: &J) -> Vec<String> {
    fn walk(v: &J, out: &mut Vec<String>) {
        match v {
            J::Object(o) => {
                if let (Some(J::Object(c)), Some(_)) = (o.get("config"), o.get("class_name")) {
                    let name = c.get("name").and_then(J::as_str).unwrap_or("?");
                    for (k, r) in c {
                        if k.ends_with("_regularizer") && !r.is_null() {
                            out.push(format!("layer `{name}`: {k}"));
                        }
                    }
                }
                o.values().for_each(|v| walk(v, out));
            }
            J::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(config, &mut out);
    out
}

struct Cx {
    defs: Vec<String>,
    model_names: HashSet<String>,
    keras2: bool,
    /// The top model's name when Keras generated its own (taken by the first model built).
    name_hint: Option<String>,
}

struct BuiltModel {
    name: String,
    weights: Vec<WeightBinding>,
    legacy: Vec<(String, Vec<String>)>,
}

fn class_of(layer: &J) -> Result<&str> {
    layer["class_name"].as_str().ok_or_else(|| ImportError::Config("a layer has no class_name".into()))
}

fn cfg(layer: &J) -> &J {
    &layer["config"]
}

fn layer_name(layer: &J) -> Result<String> {
    cfg(layer)["name"]
        .as_str()
        .or_else(|| layer["name"].as_str())
        .map(str::to_string)
        .ok_or_else(|| ImportError::Config("a layer has no name".into()))
}

/// Keras's `to_snake_case` (used for the names of weight groups).
pub fn snake_case(name: &str) -> String {
    // (.)([A-Z][a-z]+) -> \1_\2, then ([a-z])([A-Z]) -> \1_\2, lower.
    let c: Vec<char> = name.chars().collect();
    let mut s1 = String::new();
    for i in 0..c.len() {
        if i > 0 && c[i].is_ascii_uppercase() && c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()) {
            s1.push('_');
        }
        s1.push(c[i]);
    }
    let c: Vec<char> = s1.chars().collect();
    let mut s2 = String::new();
    for i in 0..c.len() {
        if i > 0 && c[i].is_ascii_uppercase() && c[i - 1].is_ascii_lowercase() {
            s2.push('_');
        }
        s2.push(c[i]);
    }
    s2.to_lowercase()
}

/// Whether `name` is one Keras generates (`base`, or `base_` and digits) for one of `bases`.
fn is_generated_name(name: &str, bases: &[&str]) -> bool {
    bases.iter().any(|b| {
        name.strip_prefix(b).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix('_')
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
        })
    })
}

fn is_model_class(class: &str) -> bool {
    matches!(class, "Functional" | "Sequential" | "Model")
}

fn ident(name: &str) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if matches!(s.as_str(), "model" | "where" | "of" | "true" | "false" | "None" | "none" | "True" | "False")
    {
        s.push('_');
    }
    s
}

/// The identifiers of one imported model: each thing named (an input, a layer instance, a
/// layer call's output tensor) gets one identifier, derived from its Keras name, and no two
/// things get the same one. Keras names that differ only in characters the language does
/// not allow (`p-q`, `p_q`), or that look like a generated suffix (`lstm_1` beside the
/// second output of `lstm`), would otherwise become the same variable.
#[derive(Debug, Default)]
struct Idents {
    by_key: HashMap<String, String>,
    used: HashSet<String>,
}

impl Idents {
    /// The identifier of `key`, made from `base` (sanitised, then `_2`, `_3`, ... until
    /// unused) the first time it is asked for.
    fn of(&mut self, key: &str, base: &str) -> String {
        if let Some(v) = self.by_key.get(key) {
            return v.clone();
        }
        let stem = ident(base);
        let mut name = stem.clone();
        let mut k = 1;
        while self.used.contains(&name) {
            k += 1;
            name = format!("{stem}_{k}");
        }
        self.used.insert(name.clone());
        self.by_key.insert(key.to_string(), name.clone());
        name
    }
}

fn camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            cs.next().map_or(String::new(), |f| f.to_ascii_uppercase().to_string() + cs.as_str())
        })
        .collect()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Counts layers by snake-case class within one container to give Keras's weight paths.
#[derive(Default)]
struct PathNames(HashMap<String, usize>);

impl PathNames {
    fn next(&mut self, class: &str) -> String {
        let base = snake_case(class);
        let n = self.0.entry(base.clone()).or_insert(0);
        let name = if *n == 0 { base } else { format!("{base}_{n}") };
        *n += 1;
        name
    }
}

/// A converted layer: its constructor text and its weights in Keras's order.
struct LayerText {
    ctor: String,
    weights: Vec<WeightBinding>,
}

impl Cx {
    fn unique_model_name(&mut self, keras_name: &str) -> String {
        let mut base = camel(keras_name);
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
            base = format!("Model{base}");
        }
        // A model may not take a layer type's name (only the `.seq` text has names).
        #[cfg(feature = "import")]
        if seqmodel_compiler::layers::class(&base).is_some() {
            base.push_str("Model");
        }
        let mut name = base.clone();
        let mut k = 2;
        while !self.model_names.insert(name.clone()) {
            name = format!("{base}{k}");
            k += 1;
        }
        name
    }

    /// Converts a Functional or Sequential model into a `.seq` model definition.
    fn model(&mut self, m: &J, h5_prefix: &str) -> Result<BuiltModel> {
        let class = class_of(m)?;
        let mut keras_name = cfg(m)["name"].as_str().unwrap_or("model").to_string();
        // A name Keras made up (`functional_3`) gives way to the file's, for the top model.
        if let Some(hint) = self
            .name_hint
            .take()
            .filter(|_| is_generated_name(&keras_name, &["functional", "sequential", "model"]))
        {
            keras_name = hint;
        }
        let name = self.unique_model_name(&keras_name);
        match class {
            "Sequential" => self.sequential(m, &name, h5_prefix),
            "Functional" | "Model" => self.functional(m, &name, h5_prefix),
            other => Err(ImportError::Config(format!("top-level class `{other}` is not a model"))),
        }
    }

    fn input_type(
        &self,
        layer_cfg: &J,
        who: &str,
        symbols: &mut Vec<String>,
    ) -> Result<(String, Option<usize>)> {
        let shape = layer_cfg["batch_shape"]
            .as_array()
            .or_else(|| layer_cfg["batch_input_shape"].as_array())
            .ok_or_else(|| ImportError::Config(format!("input `{who}` has no batch_shape")))?;
        let Some((first, rest)) = shape.split_first() else {
            return Err(ImportError::Config(format!("input `{who}` has an empty batch_shape")));
        };
        let batch = first.as_u64().map(|b| b as usize);
        if batch == Some(0) {
            return Err(ImportError::Config(format!("input `{who}` declares a batch of 0 rows")));
        }
        let mut dims = Vec::new();
        for d in rest {
            match d.as_u64() {
                Some(n) => dims.push(n.to_string()),
                None => {
                    let sym =
                        if symbols.is_empty() { "T".to_string() } else { format!("T{}", symbols.len() + 1) };
                    symbols.push(sym.clone());
                    dims.push(sym);
                }
            }
        }
        let dtype =
            match layer_cfg["dtype"].as_str().or_else(|| layer_cfg["dtype"]["config"]["name"].as_str()) {
                None | Some("float32") => "",
                Some("int32") | Some("int64") => " of i32",
                Some(other) => {
                    return Err(ImportError::Unsupported {
                        layer: who.into(),
                        what: format!("input dtype `{other}`"),
                    });
                }
            };
        Ok((format!("[{}]{dtype}", dims.join(", ")), batch))
    }

    fn sequential(&mut self, m: &J, name: &str, h5_prefix: &str) -> Result<BuiltModel> {
        let layers = cfg(m)["layers"]
            .as_array()
            .ok_or_else(|| ImportError::Config("Sequential without layers".into()))?;
        let mut symbols = Vec::new();
        let mut input = None;
        let mut batch = None;
        let mut body = Vec::new();
        let mut weights = Vec::new();
        let mut legacy = Vec::new();
        let mut paths = PathNames::default();
        for layer in layers {
            let class = class_of(layer)?;
            let lname = layer_name(layer)?;
            if class == "InputLayer" {
                let (ty, b) = self.input_type(cfg(layer), &lname, &mut symbols)?;
                input = Some(ty);
                batch = b;
                paths.next(class);
                continue;
            }
            if input.is_none() {
                if cfg(layer).get("batch_input_shape").is_some() || cfg(layer).get("batch_shape").is_some() {
                    let (ty, b) = self.input_type(cfg(layer), &lname, &mut symbols)?;
                    input = Some(ty);
                    batch = b;
                } else if let Some(shape) = cfg(m).get("build_input_shape").filter(|s| s.is_array()) {
                    let fake = serde_json::json!({ "batch_shape": shape });
                    let (ty, b) = self.input_type(&fake, &lname, &mut symbols)?;
                    input = Some(ty);
                    batch = b;
                } else {
                    return Err(ImportError::Config("Sequential model without an input shape".into()));
                }
            }
            let h5 = format!("{h5_prefix}layers/{}", paths.next(class));
            let lt = self.layer(layer, name, &h5)?;
            legacy.push((lname, lt.weights.iter().map(|w| w.key.clone()).collect()));
            weights.extend(lt.weights);
            body.push(lt.ctor);
        }
        let input = input.ok_or_else(|| ImportError::Config("Sequential model without layers".into()))?;
        let mut def = format!("model {name}(x: {input})");
        if let Some(b) = batch {
            let _ = write!(def, " where batch = {b}");
        }
        def.push_str(" {\n    x");
        for b in &body {
            let _ = write!(def, "\n      -> {b}");
        }
        def.push_str("\n}\n");
        self.defs.push(def);
        Ok(BuiltModel { name: name.to_string(), weights, legacy })
    }

    fn functional(&mut self, m: &J, name: &str, h5_prefix: &str) -> Result<BuiltModel> {
        let c = cfg(m);
        let layers =
            c["layers"].as_array().ok_or_else(|| ImportError::Config("Functional without layers".into()))?;
        let mut by_name: HashMap<String, &J> = HashMap::new();
        for l in layers {
            by_name.insert(layer_name(l)?, l);
        }
        let triples = |v: &J| -> Vec<(String, usize, usize)> {
            let list: Vec<&J> = match v.as_array() {
                Some(a) if a.first().is_some_and(J::is_string) => vec![v],
                Some(a) => a.iter().collect(),
                None => Vec::new(),
            };
            list.into_iter()
                .filter_map(|t| {
                    Some((t[0].as_str()?.to_string(), t[1].as_u64()? as usize, t[2].as_u64()? as usize))
                })
                .collect()
        };
        let inputs = triples(&c["input_layers"]);
        let outputs = triples(&c["output_layers"]);
        let mut symbols = Vec::new();
        let mut params = Vec::new();
        let mut batch = None;
        // Keys: `in:NAME` an input, `out:LAYER#NODE#TENSOR` a call's output, `layer:NAME` a
        // shared layer instance.
        let names = std::cell::RefCell::new(Idents::default());
        // Inputs Keras named itself (`input_layer_3`) read as `x` (`x1`, `x2`, ... for several).
        let auto: Vec<&str> = inputs
            .iter()
            .map(|(n, _, _)| n.as_str())
            .filter(|n| is_generated_name(n, &["input_layer", "input"]))
            .collect();
        let input_base = |n: &str| match auto.iter().position(|a| *a == n) {
            Some(_) if auto.len() == 1 => "x".to_string(),
            Some(k) => format!("x{}", k + 1),
            None => n.to_string(),
        };
        let input_var = |n: &str| names.borrow_mut().of(&format!("in:{n}"), &input_base(n));
        for (iname, _, _) in &inputs {
            let l = by_name
                .get(iname)
                .ok_or_else(|| ImportError::Config(format!("unknown input layer `{iname}`")))?;
            let (ty, b) = self.input_type(cfg(l), iname, &mut symbols)?;
            batch = batch.or(b);
            params.push(format!("{}: {ty}", input_var(iname)));
        }
        // Output variable of (layer, node, tensor).
        let n_nodes = |l: &J| l["inbound_nodes"].as_array().map_or(0, Vec::len);
        let var = |lname: &str, node: usize, tensor: usize, multi_out: bool, multi_node: bool| {
            let mut v = lname.to_string();
            if multi_node {
                let _ = write!(v, "_call{node}");
            }
            if multi_out {
                let _ = write!(v, "_{tensor}");
            }
            // Keyed as named: a layer called once is its node whatever index Keras's
            // history gives it (a nested model's call can be node 1).
            let (node, tensor) = (if multi_node { node } else { 0 }, if multi_out { tensor } else { 0 });
            names.borrow_mut().of(&format!("out:{lname}#{node}#{tensor}"), &v)
        };
        let instance_var =
            |lname: &str| names.borrow_mut().of(&format!("layer:{lname}"), &format!("layer_{lname}"));
        let mut outputs_count: HashMap<String, usize> = HashMap::new();
        for l in layers {
            let lname = layer_name(l)?;
            let k = output_count(l);
            outputs_count.insert(lname, k);
        }
        let mut body = Vec::new();
        let mut weights_by_layer: HashMap<String, Vec<WeightBinding>> = HashMap::new();
        let mut paths = PathNames::default();
        let mut h5_of: HashMap<String, String> = HashMap::new();
        for l in layers {
            let class = class_of(l)?;
            let p = paths.next(if is_model_class(class) && class == "Model" { "Functional" } else { class });
            h5_of.insert(layer_name(l)?, format!("{h5_prefix}layers/{p}"));
        }
        let mut ctor_done: HashSet<String> = HashSet::new();
        let mut model_calls: HashMap<String, String> = HashMap::new();
        // Each layer call once, every call after the calls it reads (Kahn's algorithm, in
        // the config's order where it allows): linear in the calls whatever order the
        // config lists its layers in.
        let order = call_order(layers)?;
        // The variables a mask may reach (see below), and for each tensor the first call of
        // a MultiHeadAttention that reads it in Keras's run, which removes its mask for the
        // calls Keras runs after it.
        let mut maybe_masked: HashSet<String> = HashSet::new();
        let run_rank = keras_run_ranks(layers, &outputs)?;
        let mut mha_reads: HashMap<Ref, usize> = HashMap::new();
        for l in layers.iter().filter(|l| class_of(l).ok() == Some("MultiHeadAttention")) {
            let lname = layer_name(l)?;
            for (ni, node) in l["inbound_nodes"].as_array().into_iter().flatten().enumerate() {
                let Some(&rank) = run_rank.get(&(lname.clone(), ni)) else { continue };
                let mut read = node_inputs(node)?.0;
                collect_tensors(&node["kwargs"], &mut read);
                for r in read {
                    let first = mha_reads.entry(r).or_insert(rank);
                    *first = (*first).min(rank);
                }
            }
        }
        for (li, ni) in order {
            let l = &layers[li];
            let class = class_of(l)?;
            let lname = layer_name(l)?;
            let nodes = l["inbound_nodes"].as_array().map(Vec::as_slice).unwrap_or_default();
            let multi_node = nodes.len() > 1;
            let node = &nodes[ni];
            let (args, init) = node_inputs(node)?;
            let ref_var = |(n, nn, t): &Ref| {
                if by_name.get(n).is_some_and(|x| class_of(x).ok() == Some("InputLayer")) {
                    return input_var(n);
                }
                let multi_out = outputs_count.get(n).copied().unwrap_or(1) > 1;
                let mn = by_name.get(n).is_some_and(|x| n_nodes(x) > 1);
                var(n, *nn, *t, multi_out, mn)
            };
            let mut arg_vars: Vec<String> = args.iter().map(ref_var).collect();
            let init_vars: Vec<String> = init.iter().map(ref_var).collect();
            let any_masked = arg_vars.iter().any(|v| maybe_masked.contains(v));
            if crate::ops::is_op(l) {
                let target = var(&lname, ni, 0, false, multi_node);
                let op = crate::ops::expr(class, &lname, cfg(l), node, &arg_vars)?;
                body.push(format!("{target} = {}", op.text(any_masked)));
                continue;
            }
            let kw = call_kwargs(node, class, &lname)?;
            if returns_scores(l) && node["kwargs"]["return_attention_scores"].as_bool() != Some(true) {
                return Err(ImportError::Unsupported {
                    layer: lname.clone(),
                    what: "calls with and without `return_attention_scores` of one attention layer".into(),
                });
            }
            arg_vars.extend(kw.extra_inputs.iter().map(ref_var));
            // The mask Keras recorded for the call (for layers whose call takes one): a
            // tensor, or none, which the language must say when a mask may reach the input.
            let mask_expr = match &kw.mask {
                Some(MaskArg::One(Some(r))) => format!(", mask={}", ref_var(r)),
                Some(MaskArg::List(ms)) if ms.iter().any(Option::is_some) => {
                    let ms: Vec<String> =
                        ms.iter().map(|m| m.as_ref().map_or_else(|| "None".to_string(), ref_var)).collect();
                    format!(", mask=[{}]", ms.join(", "))
                }
                Some(_) if any_masked => ", mask=None".to_string(),
                // An attention layer on a list records no mask: it takes its inputs' own, which
                // a MultiHeadAttention that Keras ran before on them has removed (Keras 3's
                // MultiHeadAttention.call sets its inputs' masks to None).
                None if matches!(class, "Attention" | "AdditiveAttention") && any_masked => {
                    let rank = run_rank.get(&(lname.clone(), ni)).copied().unwrap_or(usize::MAX);
                    match args.iter().filter(|r| mha_reads.get(*r).is_some_and(|&m| m < rank)).count() {
                        0 => String::new(),
                        n if n == arg_vars.len() => ", mask=None".to_string(),
                        _ => {
                            return Err(ImportError::Unsupported {
                                layer: lname.clone(),
                                what: "inputs of which a MultiHeadAttention run before removed some masks but not all"
                                    .into(),
                            });
                        }
                    }
                }
                _ => String::new(),
            };
            if is_model_class(class) && !mask_expr.is_empty() {
                return Err(ImportError::Unsupported {
                    layer: lname.clone(),
                    what: "a mask given to a nested model's call".into(),
                });
            }
            let callee = if is_model_class(class) {
                if !model_calls.contains_key(&lname) {
                    let h5 = format!("{}/", h5_of[&lname]);
                    let built = self.model(l, &h5)?;
                    weights_by_layer.insert(lname.clone(), built.weights);
                    model_calls.insert(lname.clone(), built.name);
                }
                model_calls[&lname].clone()
            } else if multi_node {
                if ctor_done.insert(lname.clone()) {
                    let lt = self.layer(l, name, &h5_of[&lname])?;
                    let ctor = with_call_options(node, lt.ctor);
                    body.push(format!("{} = {}", instance_var(&lname), ctor));
                    weights_by_layer.insert(lname.clone(), lt.weights);
                }
                instance_var(&lname)
            } else {
                let lt = self.layer(l, name, &h5_of[&lname])?;
                weights_by_layer.insert(lname.clone(), lt.weights);
                with_call_options(node, lt.ctor)
            };
            let n_out = outputs_count.get(&lname).copied().unwrap_or(1);
            let targets: Vec<String> =
                (0..n_out).map(|t| var(&lname, ni, t, n_out > 1, multi_node)).collect();
            let input_expr = if arg_vars.len() == 1 && !is_merge(class) {
                arg_vars[0].clone()
            } else {
                format!("[{}]", arg_vars.join(", "))
            };
            let init_expr = if init_vars.is_empty() {
                String::new()
            } else {
                format!(", initial_state=[{}]", init_vars.join(", "))
            };
            let lhs = if targets.len() == 1 { targets[0].clone() } else { targets.join(", ") };
            body.push(format!("{lhs} = {callee}({input_expr}{init_expr}{mask_expr})"));
            // Whether a mask may reach each output: a source of masks, a model (whose
            // layers may hold one), a call given a mask, or a layer fed one (over-approximated:
            // a `mask=None` too many changes nothing).
            let source = class == "Masking"
                || class == "Embedding" && cfg(l)["mask_zero"].as_bool() == Some(true)
                || is_model_class(class) && makes_masks(l);
            let masked_out = source
                || match &kw.mask {
                    Some(MaskArg::One(m)) => m.is_some(),
                    Some(MaskArg::List(ms)) => ms.iter().any(Option::is_some),
                    None => any_masked,
                };
            if masked_out {
                maybe_masked.extend(targets);
            }
        }
        let out_vars: Vec<String> = outputs
            .iter()
            .map(|(n, nn, t)| {
                let l = by_name.get(n).copied();
                if l.is_some_and(|x| class_of(x).ok() == Some("InputLayer")) {
                    return input_var(n);
                }
                let multi_out = outputs_count.get(n).copied().unwrap_or(1) > 1;
                let mn = l.is_some_and(|x| n_nodes(x) > 1);
                var(n, *nn, *t, multi_out, mn)
            })
            .collect();
        if out_vars.is_empty() {
            return Err(ImportError::Config("the model has no outputs".into()));
        }
        let mut def = format!("model {name}({})", params.join(", "));
        if let Some(b) = batch {
            let _ = write!(def, " where batch = {b}");
        }
        def.push_str(" {\n");
        for line in &body {
            let _ = writeln!(def, "    {line};");
        }
        let out =
            if out_vars.len() == 1 { out_vars[0].clone() } else { format!("({})", out_vars.join(", ")) };
        let _ = writeln!(def, "    {out}\n}}");
        self.defs.push(def);
        let mut weights = Vec::new();
        let mut legacy = Vec::new();
        for l in layers {
            let lname = layer_name(l)?;
            let ws = weights_by_layer.remove(&lname).unwrap_or_default();
            legacy.push((lname, ws.iter().map(|w| w.key.clone()).collect()));
            weights.extend(ws);
        }
        Ok(BuiltModel { name: name.to_string(), weights, legacy })
    }

    /// The constructor of one layer (not a model) and its weights.
    fn layer(&mut self, l: &J, model: &str, h5: &str) -> Result<LayerText> {
        let class = class_of(l)?;
        let lname = layer_name(l)?;
        let c = cfg(l);
        let unsupported = |what: String| ImportError::Unsupported { layer: lname.clone(), what };
        let policy = c["dtype"]["config"]["name"].as_str().or_else(|| c["dtype"].as_str());
        if let Some(policy) =
            policy.filter(|p| *p != "float32" && class != "InputLayer" && class != "Embedding")
        {
            return Err(unsupported(format!("dtype policy `{policy}`")));
        }
        for key in ["lora_rank", "quantization_config"] {
            if !c[key].is_null() {
                return Err(unsupported(format!("`{key}`")));
            }
        }
        let key = |v: &str| format!("{model}/{lname}/{v}");
        let w = |k: &str, path: String| WeightBinding { key: key(k), keras_path: path };
        let mut args: Vec<String> = Vec::new();
        let mut weights = Vec::new();
        let ctor_class: &str = match class {
            "Dense" => {
                args.push(num(&c["units"], &lname, "units")?);
                args.push(format!("activation={}", self.activation(&c["activation"], &lname)?));
                let bias = c["use_bias"].as_bool().unwrap_or(true);
                args.push(format!("use_bias={bias}"));
                weights.push(w("kernel", format!("{h5}/vars/0")));
                if bias {
                    weights.push(w("bias", format!("{h5}/vars/1")));
                }
                "Dense"
            }
            "Activation" => {
                args.push(self.activation(&c["activation"], &lname)?);
                "Activation"
            }
            "LSTM" | "GRU" | "SimpleRNN" => {
                if c["zero_output_for_mask"].as_bool() == Some(true) {
                    return Err(unsupported("`zero_output_for_mask=True` outside Bidirectional".into()));
                }
                self.rnn_args(c, class, &lname, &mut args)?;
                weights.extend(rnn_weights(&key(""), &format!("{h5}/cell"), c));
                class
            }
            "Bidirectional" => {
                let inner = &c["layer"];
                let inner_class = class_of(inner)?;
                if !matches!(inner_class, "LSTM" | "GRU" | "SimpleRNN") {
                    return Err(unsupported(format!("Bidirectional around `{inner_class}`")));
                }
                let back = &c["backward_layer"];
                if back.is_object() && !same_rnn(cfg(inner), cfg(back)) {
                    return Err(unsupported("a `backward_layer` that differs from the forward layer".into()));
                }
                let mut inner_args = Vec::new();
                self.rnn_args(cfg(inner), inner_class, &lname, &mut inner_args)?;
                let iname = cfg(inner)["name"].as_str().unwrap_or("forward");
                inner_args.push(format!("name={}", quote(&format!("{lname}__{iname}"))));
                args.push(format!("{inner_class}({})", inner_args.join(", ")));
                let merge = match &c["merge_mode"] {
                    J::Null => "None".to_string(),
                    J::String(s) => quote(s),
                    _ => return Err(unsupported("this merge_mode".into())),
                };
                args.push(format!("merge_mode={merge}"));
                weights.extend(rnn_weights(
                    &key("forward/"),
                    &format!("{h5}/forward_layer/cell"),
                    cfg(inner),
                ));
                weights.extend(rnn_weights(
                    &key("backward/"),
                    &format!("{h5}/backward_layer/cell"),
                    cfg(inner),
                ));
                "Bidirectional"
            }
            "TimeDistributed" => {
                let inner = &c["layer"];
                let inner_class = class_of(inner)?;
                if is_model_class(inner_class) {
                    let built = self.model(inner, &format!("{h5}/layer/"))?;
                    args.push(built.name);
                    weights.extend(built.weights);
                } else {
                    let lt = self.layer(inner, model, &format!("{h5}/layer"))?;
                    args.push(lt.ctor);
                    weights.extend(lt.weights);
                }
                "TimeDistributed"
            }
            "RepeatVector" => {
                args.push(num(&c["n"], &lname, "n")?);
                "RepeatVector"
            }
            "Embedding" => {
                args.push(num(&c["input_dim"], &lname, "input_dim")?);
                args.push(num(&c["output_dim"], &lname, "output_dim")?);
                args.push(format!("mask_zero={}", c["mask_zero"].as_bool().unwrap_or(false)));
                weights.push(w("embeddings", format!("{h5}/vars/0")));
                "Embedding"
            }
            "Masking" => {
                args.push(format!("mask_value={:?}", c["mask_value"].as_f64().unwrap_or(0.0)));
                "Masking"
            }
            "Cropping1D" | "ZeroPadding1D" => {
                let k = if class == "Cropping1D" { "cropping" } else { "padding" };
                let v = &c[k];
                let pair = match v {
                    J::Array(a) if a.len() == 2 => {
                        format!("({}, {})", num(&a[0], &lname, k)?, num(&a[1], &lname, k)?)
                    }
                    J::Number(_) => num(v, &lname, k)?,
                    _ => return Err(unsupported(format!("`{k}` = {v}"))),
                };
                args.push(pair);
                class
            }
            "Dropout" => {
                args.push(format!("{:?}", c["rate"].as_f64().unwrap_or(0.0)));
                "Dropout"
            }
            "Concatenate" => {
                args.push(format!("axis={}", c["axis"].as_i64().unwrap_or(-1)));
                "Concatenate"
            }
            "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" => class,
            other if crate::described::weights(other, c).is_some() => {
                for (var, path) in crate::described::weights(other, c).unwrap_or_default() {
                    weights.push(w(var.name, format!("{h5}/{path}")));
                }
                #[cfg(feature = "import")]
                args.extend(crate::described::args(other, c, &lname, |a| self.activation(a, &lname))?);
                other
            }
            other => {
                return Err(unsupported(format!("the Keras layer class `{other}`")));
            }
        };
        args.push(format!("name={}", quote(&lname)));
        Ok(LayerText { ctor: format!("{ctor_class}({})", args.join(", ")), weights })
    }

    fn activation(&self, a: &J, layer: &str) -> Result<String> {
        match a {
            J::Null => Ok(quote("linear")),
            J::String(s) => {
                let s = if self.keras2 && s == "hard_sigmoid" { "hard_sigmoid_keras2" } else { s.as_str() };
                Ok(quote(s))
            }
            other => {
                Err(ImportError::Unsupported { layer: layer.into(), what: format!("the activation {other}") })
            }
        }
    }

    fn rnn_args(&self, c: &J, class: &str, lname: &str, args: &mut Vec<String>) -> Result<()> {
        if c["time_major"].as_bool() == Some(true) {
            return Err(ImportError::Unsupported { layer: lname.into(), what: "`time_major=True`".into() });
        }
        args.push(num(&c["units"], lname, "units")?);
        args.push(format!("activation={}", self.activation(&c["activation"], lname)?));
        if class != "SimpleRNN" {
            args.push(format!(
                "recurrent_activation={}",
                self.activation(&c["recurrent_activation"], lname)?
            ));
        }
        for flag in ["use_bias", "return_sequences", "return_state", "go_backwards", "stateful", "unroll"] {
            if let Some(b) = c[flag].as_bool() {
                args.push(format!("{flag}={b}"));
            }
        }
        if class == "GRU" {
            args.push(format!("reset_after={}", c["reset_after"].as_bool().unwrap_or(true)));
        }
        for rate in ["dropout", "recurrent_dropout"] {
            if let Some(r) = c[rate].as_f64() {
                args.push(format!("{rate}={r:?}"));
            }
        }
        Ok(())
    }
}

/// Keras call options that change the computation, moved into the constructor where the
/// language has them (attention's `use_causal_mask` and `return_attention_scores`).
fn with_call_options(node: &J, ctor: String) -> String {
    ["use_causal_mask", "return_attention_scores"]
        .into_iter()
        .filter(|option| node["kwargs"][option].as_bool() == Some(true))
        .fold(ctor, |ctor, option| match ctor.split_once('(') {
            Some((class, rest)) => format!("{class}({option}=true, {rest}"),
            None => ctor,
        })
}

/// Whether some call of attention layer `l` asks for its weights too
/// (`return_attention_scores=True`, a second output).
fn returns_scores(l: &J) -> bool {
    l["inbound_nodes"].as_array().is_some_and(|nodes| {
        nodes.iter().any(|n| n["kwargs"]["return_attention_scores"].as_bool() == Some(true))
    })
}

fn num(v: &J, layer: &str, what: &str) -> Result<String> {
    v.as_u64().map(|n| n.to_string()).ok_or_else(|| {
        ImportError::Config(format!("layer `{layer}`: `{what}` is not a non-negative integer: {v}"))
    })
}

fn is_merge(class: &str) -> bool {
    matches!(class, "Concatenate" | "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum")
}

fn same_rnn(a: &J, b: &J) -> bool {
    let keys = [
        "units",
        "activation",
        "recurrent_activation",
        "use_bias",
        "return_sequences",
        "return_state",
        "reset_after",
        "stateful",
    ];
    keys.iter().all(|k| a[*k] == b[*k])
        && a["go_backwards"].as_bool().unwrap_or(false) != b["go_backwards"].as_bool().unwrap_or(false)
}

fn rnn_weights(key_prefix: &str, cell: &str, c: &J) -> Vec<WeightBinding> {
    let mut v = vec![
        WeightBinding { key: format!("{key_prefix}kernel"), keras_path: format!("{cell}/vars/0") },
        WeightBinding { key: format!("{key_prefix}recurrent_kernel"), keras_path: format!("{cell}/vars/1") },
    ];
    if c["use_bias"].as_bool().unwrap_or(true) {
        v.push(WeightBinding { key: format!("{key_prefix}bias"), keras_path: format!("{cell}/vars/2") });
    }
    v
}

/// The order to convert a functional model's layer calls in: `(layer index, node index)`,
/// each call after every call whose output it reads, ties in the config's order. A call
/// whose inputs no layer produces is an error.
/// Each call's position in Keras's run of the model (see [`crate::run_order`]).
fn keras_run_ranks(layers: &[J], outputs: &[Ref]) -> Result<HashMap<(String, usize), usize>> {
    let mut parents: HashMap<(String, usize), Vec<(String, usize)>> = HashMap::new();
    for l in layers {
        let name = layer_name(l)?;
        for (ni, node) in l["inbound_nodes"].as_array().into_iter().flatten().enumerate() {
            let mut read = node_inputs(node)?.0;
            collect_tensors(&node["kwargs"], &mut read);
            let mut seen = HashSet::new();
            let ps = read.into_iter().map(|(n, nn, _)| (n, nn)).filter(|c| seen.insert(c.clone())).collect();
            parents.insert((name.clone(), ni), ps);
        }
    }
    let outs: Vec<(String, usize)> = outputs.iter().map(|(n, nn, _)| (n.clone(), *nn)).collect();
    Ok(crate::run_order::run_ranks(&parents, &outs))
}

fn call_order(layers: &[J]) -> Result<Vec<(usize, usize)>> {
    let mut index: HashMap<(String, usize), usize> = HashMap::new();
    let mut calls = Vec::new();
    let mut inputs: HashSet<String> = HashSet::new();
    for (li, l) in layers.iter().enumerate() {
        let name = layer_name(l)?;
        if class_of(l)? == "InputLayer" {
            inputs.insert(name);
            continue;
        }
        for ni in 0..l["inbound_nodes"].as_array().map_or(0, Vec::len) {
            index.insert((name.clone(), ni), calls.len());
            calls.push((li, ni));
        }
    }
    let mut waiting = vec![0usize; calls.len()];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); calls.len()];
    for (c, &(li, ni)) in calls.iter().enumerate() {
        let node = &layers[li]["inbound_nodes"][ni];
        let (args, _) = node_inputs(node)?;
        let mut kwargs = Vec::new();
        collect_tensors(&node["kwargs"], &mut kwargs);
        let mut deps: Vec<usize> = Vec::new();
        for (n, nn, _) in args.iter().chain(&kwargs) {
            match index.get(&(n.clone(), *nn)) {
                Some(&d) => deps.push(d),
                None if inputs.contains(n) && *nn == 0 => {}
                None => {
                    return Err(ImportError::Config(format!(
                        "layer `{}` reads `{n}` (call {nn}), which no layer produces",
                        layer_name(&layers[li])?
                    )));
                }
            }
        }
        deps.sort_unstable();
        deps.dedup();
        waiting[c] = deps.len();
        for d in deps {
            readers[d].push(c);
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
        (0..calls.len()).filter(|&c| waiting[c] == 0).map(std::cmp::Reverse).collect();
    let mut order = Vec::with_capacity(calls.len());
    while let Some(std::cmp::Reverse(c)) = ready.pop() {
        order.push(calls[c]);
        for &r in &readers[c] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push(std::cmp::Reverse(r));
            }
        }
    }
    if order.len() < calls.len() {
        return Err(ImportError::Config(
            "the functional graph has a cycle: some layers read each other".into(),
        ));
    }
    Ok(order)
}

fn output_count(l: &J) -> usize {
    let c = cfg(l);
    let class = l["class_name"].as_str().unwrap_or("");
    match class {
        "LSTM" | "GRU" | "SimpleRNN" if c["return_state"].as_bool() == Some(true) => {
            1 + if class == "LSTM" { 2 } else { 1 }
        }
        "Bidirectional" => {
            let inner = &c["layer"];
            let merged = if c["merge_mode"].is_null() { 2 } else { 1 };
            let states = if cfg(inner)["return_state"].as_bool() == Some(true) {
                2 * if inner["class_name"].as_str() == Some("LSTM") { 2 } else { 1 }
            } else {
                0
            };
            merged + states
        }
        "Attention" | "AdditiveAttention" | "MultiHeadAttention" if returns_scores(l) => 2,
        "Functional" | "Model" => {
            let o = &c["output_layers"];
            match o.as_array() {
                Some(a) if a.first().is_some_and(J::is_string) => 1,
                Some(a) => a.len(),
                None => 1,
            }
        }
        _ => 1,
    }
}

type Ref = (String, usize, usize);

/// Whether a nested model may give a masked output: it holds a layer that makes masks
/// (Masking, Embedding with `mask_zero`), a call given a mask, or such a model.
fn makes_masks(model: &J) -> bool {
    cfg(model)["layers"].as_array().is_some_and(|layers| {
        layers.iter().any(|l| {
            let class = l["class_name"].as_str().unwrap_or("");
            class == "Masking"
                || class == "Embedding" && cfg(l)["mask_zero"].as_bool() == Some(true)
                || is_model_class(class) && makes_masks(l)
                || l["inbound_nodes"].as_array().is_some_and(|nodes| {
                    nodes.iter().any(|n| {
                        let mut refs = Vec::new();
                        collect_tensors(&n["kwargs"]["mask"], &mut refs);
                        !refs.is_empty()
                    })
                })
        })
    })
}

/// Every Keras tensor in `v` (a tensor, or lists and objects holding tensors), in order.
fn collect_tensors(v: &J, out: &mut Vec<Ref>) {
    match v {
        J::Object(o) if o.get("class_name").and_then(J::as_str) == Some("__keras_tensor__") => {
            let h = &v["config"]["keras_history"];
            if let (Some(n), Some(a), Some(b)) = (h[0].as_str(), h[1].as_u64(), h[2].as_u64()) {
                out.push((n.to_string(), a as usize, b as usize));
            }
        }
        J::Array(a) => a.iter().for_each(|x| collect_tensors(x, out)),
        J::Object(o) => o.values().for_each(|x| collect_tensors(x, out)),
        _ => {}
    }
}

/// The mask Keras recorded for a call: one (a tensor or none) or one per input.
enum MaskArg {
    One(Option<Ref>),
    List(Vec<Option<Ref>>),
}

/// What a call's keyword arguments say beyond `initial_state` (read by [`node_inputs`]).
struct CallKwargs {
    /// The `mask`, when the call records one.
    mask: Option<MaskArg>,
    /// Inputs given by keyword (`MultiHeadAttention`'s `key`), after the positional ones.
    extra_inputs: Vec<Ref>,
}

/// Reads a call's keyword arguments: every one is understood, or the call is refused (a
/// keyword the importer passed over would change the model without a word).
fn call_kwargs(node: &J, class: &str, layer: &str) -> Result<CallKwargs> {
    let unsupported = |what: String| ImportError::Unsupported { layer: layer.into(), what };
    let one = |v: &J| -> Result<Option<Ref>> {
        let mut refs = Vec::new();
        collect_tensors(v, &mut refs);
        match (v.is_null(), refs.len()) {
            (true, _) => Ok(None),
            (false, 1) => Ok(refs.pop()),
            _ => Err(unsupported(format!("the call's mask {v}"))),
        }
    };
    let mut out = CallKwargs { mask: None, extra_inputs: Vec::new() };
    let Some(kwargs) = node["kwargs"].as_object() else { return Ok(out) };
    for (key, v) in kwargs {
        match key.as_str() {
            "initial_state" | "use_causal_mask" => {}
            "mask" => {
                out.mask = Some(match v.as_array() {
                    Some(items) => MaskArg::List(items.iter().map(one).collect::<Result<_>>()?),
                    None => MaskArg::One(one(v)?),
                })
            }
            "key" | "value" | "query" if class == "MultiHeadAttention" && !v.is_null() => {
                let mut refs = Vec::new();
                collect_tensors(v, &mut refs);
                if key != "key" || refs.len() != 1 {
                    return Err(unsupported(format!("`{key}=` given by keyword")));
                }
                out.extra_inputs.extend(refs);
            }
            "training" | "return_attention_scores" if matches!(v, J::Null | J::Bool(false)) => {}
            // The layer's constructor takes it (`with_call_options`); every call of the
            // layer must then ask for the weights, as the layer has two outputs.
            "return_attention_scores" if v == &J::Bool(true) => {}
            _ if v.is_null() => {}
            _ => return Err(unsupported(format!("the call argument `{key}={v}`"))),
        }
    }
    Ok(out)
}

/// The tensors a node consumes: positional inputs and `initial_state`.
fn node_inputs(node: &J) -> Result<(Vec<Ref>, Vec<Ref>)> {
    let collect = collect_tensors;
    let mut args = Vec::new();
    let mut init = Vec::new();
    if let Some(a) = node.get("args") {
        collect(a, &mut args);
        if let Some(s) = node["kwargs"].get("initial_state") {
            collect(s, &mut init);
        }
    } else if let Some(list) = node.as_array() {
        // Keras 2: [[name, node, tensor, kwargs], ...]
        for item in list {
            if let (Some(n), Some(a), Some(b)) = (item[0].as_str(), item[1].as_u64(), item[2].as_u64()) {
                args.push((n.to_string(), a as usize, b as usize));
            }
        }
    } else {
        return Err(ImportError::Config("an inbound node of unknown form".into()));
    }
    Ok((args, init))
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_matches_keras() {
        assert_eq!(snake_case("LSTM"), "lstm");
        assert_eq!(snake_case("SimpleRNN"), "simple_rnn");
        assert_eq!(snake_case("TimeDistributed"), "time_distributed");
        assert_eq!(snake_case("Conv1D"), "conv1d");
        assert_eq!(snake_case("ZeroPadding1D"), "zero_padding1d");
        assert_eq!(snake_case("GRU"), "gru");
    }
}
