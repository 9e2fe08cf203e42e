//! Configs Keras would never write, but a careless or hostile file can: errors, not panics.

use serde_json::json;

fn sequential(batch_shape: serde_json::Value) -> serde_json::Value {
    json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": batch_shape, "name": "x"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "linear", "use_bias": true}}
    ]}})
}

#[test]
fn empty_or_zero_batch_shapes_are_config_errors() {
    let e = seqmodel_keras::convert(&sequential(json!([])), "3").unwrap_err().to_string();
    assert!(e.contains("empty batch_shape"), "{e}");
    let e = seqmodel_keras::convert(&sequential(json!([0, 4])), "3").unwrap_err().to_string();
    assert!(e.contains("batch of 0 rows"), "{e}");
    assert!(seqmodel_keras::convert(&sequential(json!([null, 4])), "3").is_ok());
}
