//! Keras's `compile_config`: optimizer and loss configs to seqmodel's training types.

use serde_json::Value as J;

use seqmodel_runtime::train::{Loss, Optimizer, Rule};

use crate::error::{ImportError, Result};

fn f(c: &J, key: &str, default: f32) -> f32 {
    c[key].as_f64().map_or(default, |v| v as f32)
}

fn opt_f(c: &J, key: &str) -> Option<f32> {
    c[key].as_f64().map(|v| v as f32)
}

/// An optimizer from a Keras optimizer config (`{"class_name": "Adam", "config": {...}}`),
/// with Keras's defaults for missing fields. Unsupported options are errors.
pub fn optimizer_from_config(o: &J) -> Result<Optimizer> {
    let class = o["class_name"].as_str().unwrap_or_default();
    let c = &o["config"];
    let unsupported =
        |what: &str| ImportError::Unsupported { layer: format!("optimizer {class}"), what: what.into() };
    if c["use_ema"].as_bool() == Some(true) {
        return Err(unsupported("`use_ema`"));
    }
    if c["learning_rate"].is_object() {
        return Err(unsupported("a learning-rate schedule"));
    }
    let rule = match class.to_ascii_lowercase().as_str() {
        "sgd" => {
            Rule::Sgd { momentum: f(c, "momentum", 0.0), nesterov: c["nesterov"].as_bool().unwrap_or(false) }
        }
        "adam" | "adamw" => Rule::Adam {
            beta_1: f(c, "beta_1", 0.9),
            beta_2: f(c, "beta_2", 0.999),
            epsilon: opt_f(c, "epsilon").unwrap_or(1e-7),
            amsgrad: c["amsgrad"].as_bool().unwrap_or(false),
        },
        "rmsprop" => Rule::RmsProp {
            rho: f(c, "rho", 0.9),
            momentum: f(c, "momentum", 0.0),
            epsilon: opt_f(c, "epsilon").unwrap_or(1e-7),
            centered: c["centered"].as_bool().unwrap_or(false),
        },
        "adagrad" => Rule::Adagrad {
            initial_accumulator_value: f(c, "initial_accumulator_value", 0.1),
            epsilon: opt_f(c, "epsilon").unwrap_or(1e-7),
        },
        "adamax" => Rule::Adamax {
            beta_1: f(c, "beta_1", 0.9),
            beta_2: f(c, "beta_2", 0.999),
            epsilon: opt_f(c, "epsilon").unwrap_or(1e-7),
        },
        "nadam" => Rule::Nadam {
            beta_1: f(c, "beta_1", 0.9),
            beta_2: f(c, "beta_2", 0.999),
            epsilon: opt_f(c, "epsilon").unwrap_or(1e-7),
        },
        _ => return Err(unsupported("this optimizer class")),
    };
    let default_lr = if matches!(rule, Rule::Sgd { .. }) { 0.01 } else { 0.001 };
    let mut opt = Optimizer::new(rule, f(c, "learning_rate", f(c, "lr", default_lr)));
    opt.decay = f(c, "decay", 0.0);
    opt.clipnorm = opt_f(c, "clipnorm");
    opt.clipvalue = opt_f(c, "clipvalue");
    opt.global_clipnorm = opt_f(c, "global_clipnorm");
    // AdamW's config always has its `weight_decay`; without one, its default.
    let default_decay = (class.eq_ignore_ascii_case("adamw")).then_some(0.004);
    opt.weight_decay = opt_f(c, "weight_decay").or(default_decay).filter(|wd| *wd != 0.0);
    Ok(opt)
}

/// A loss from a Keras loss name (or `{"class_name": ..., "config": {...}}`).
pub fn loss_from_config(l: &J) -> Result<Loss> {
    let (name, from_logits) = match l {
        J::String(s) => (s.as_str(), false),
        J::Object(_) => (
            l["class_name"].as_str().unwrap_or_default(),
            l["config"]["from_logits"].as_bool().unwrap_or(false),
        ),
        _ => ("", false),
    };
    let loss = Loss::from_name(name)
        .ok_or_else(|| ImportError::Unsupported { layer: "loss".into(), what: format!("loss `{name}`") })?;
    Ok(match loss {
        Loss::BinaryCrossentropy { .. } => Loss::BinaryCrossentropy { from_logits },
        Loss::CategoricalCrossentropy { .. } => Loss::CategoricalCrossentropy { from_logits },
        Loss::SparseCategoricalCrossentropy { .. } => Loss::SparseCategoricalCrossentropy { from_logits },
        other => other,
    })
}
