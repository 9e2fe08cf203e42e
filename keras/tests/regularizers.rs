//! Regularizers change nothing at inference, so a model with them imports; training would
//! differ from Keras's (their penalties are not added to the loss), which the import says.

use serde_json::json;

#[test]
fn regularizers_are_listed_and_named_in_the_source() {
    let config = json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 5, 3], "name": "x"}},
        {"class_name": "Bidirectional", "config": {"name": "bi", "layer":
            {"class_name": "LSTM", "config": {"name": "fwd", "units": 2,
             "recurrent_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}}}}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "kernel_regularizer": "l1",
         "bias_regularizer": null}}
    ]}});
    let c = seqmodel_keras::convert(&config, "3.15.1").unwrap();
    assert_eq!(c.regularizers, ["layer `fwd`: recurrent_regularizer", "layer `d`: kernel_regularizer"]);
    assert!(c.source.contains("// - layer `d`: kernel_regularizer\n"), "{}", c.source);

    let plain = json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 4], "name": "x"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "kernel_regularizer": null}}
    ]}});
    let c = seqmodel_keras::convert(&plain, "3.15.1").unwrap();
    assert!(c.regularizers.is_empty() && !c.source.contains("regularizer"), "{}", c.source);
}
