//! Identifiers of imported models: Keras names that the language cannot spell apart, or
//! that look like the importer's own suffixes, still name different tensors.

use ndarray::{ArrayD, IxDyn};
use seqmodel_runtime::{Model, Tensor, WeightStore};
use serde_json::{Value, json};

fn tensor(layer: &str) -> Value {
    json!({"class_name": "__keras_tensor__", "config": {"keras_history": [layer, 0, 0]}})
}

fn layer(class: &str, name: &str, config: Value, inputs: Value) -> Value {
    let mut config = config;
    config["name"] = json!(name);
    json!({"class_name": class, "config": config, "name": name, "inbound_nodes": [{"args": [inputs], "kwargs": {}}]})
}

/// `p-q` (relu) and `p_q` (sigmoid) on one input, subtracted: before, both became the
/// variable `p_q` and the model computed `sigmoid(x) - sigmoid(x) = 0`.
#[test]
fn names_equal_after_sanitising_stay_apart() {
    let config = json!({"class_name": "Functional", "config": {"name": "functional", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 3], "name": "x"}, "name": "x", "inbound_nodes": []},
        layer("Activation", "p-q", json!({"activation": "relu"}), tensor("x")),
        layer("Activation", "p_q", json!({"activation": "sigmoid"}), tensor("x")),
        // Named like the importer's generated names for a second output or a shared layer.
        layer("Activation", "p_q_2", json!({"activation": "tanh"}), tensor("x")),
        layer("Subtract", "sub", json!({}), json!([tensor("p-q"), tensor("p_q")])),
        layer("Add", "add", json!({}), json!([tensor("sub"), tensor("p_q_2")])),
    ], "input_layers": [["x", 0, 0]], "output_layers": ["add", 0, 0]}});
    let converted = seqmodel_keras::convert(&config, "3").unwrap();
    let compiled = seqmodel_compiler::compile(&converted.source).unwrap_or_else(|e| {
        panic!("{}\n{}", converted.source, e.render("imported.seq", &converted.source, false))
    });
    let program = compiled.program(&converted.main).unwrap().clone();
    let mut model = Model::new(program, &WeightStore::new()).unwrap();
    let xs = [-1.5f32, 0.25, 2.0];
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 3]), xs.to_vec()).unwrap();
    let y = model.predict(&[Tensor::F32(x)]).unwrap().remove(0);
    for (v, x) in y.iter().zip(xs) {
        let want = x.max(0.0) - 1.0 / (1.0 + (-x).exp()) + x.tanh();
        assert!((v - want).abs() < 1e-6, "{}\ngot {v}, want {want}", converted.source);
    }
}
