//! Corrupt, truncated or mismatched Keras files give errors, never panics.

use std::path::Path;

fn case(name: &str, file: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance").join(name).join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn truncated_files_are_errors() {
    for (name, file) in [
        ("autoencoder_nested", "model.keras"),
        ("autoencoder_nested", "model.h5"),
        ("embedding_gru_lm", "model.keras"),
    ] {
        let bytes = case(name, file);
        let full = seqmodel_keras::import_bytes(bytes.clone()).unwrap();
        for cut in [0, 8, 64, 512, bytes.len() / 3, bytes.len() / 2, bytes.len() - 100, bytes.len() - 1] {
            let r = std::panic::catch_unwind(|| seqmodel_keras::import_bytes(bytes[..cut].to_vec()));
            match r {
                // Cutting only slack at the end of a file may leave every needed byte intact;
                // then the result must be exactly the full file's.
                Ok(Ok(m)) => {
                    assert_eq!(m.weights, full.weights, "{name}/{file} cut at {cut} imported differently")
                }
                Ok(Err(e)) => assert!(!e.to_string().is_empty()),
                Err(_) => panic!("{name}/{file} cut at {cut} panicked"),
            }
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let bytes = case("gru_reset_after_true", "model.h5");
    let mut state = 12345u64;
    for _ in 0..60 {
        let mut b = bytes.clone();
        for _ in 0..4 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = (state >> 33) as usize % b.len();
            b[i] ^= (state >> 20) as u8 | 1;
        }
        let r = std::panic::catch_unwind(|| seqmodel_keras::import_bytes(b));
        assert!(r.is_ok(), "panic on a corrupted file");
    }
}

#[test]
fn unknown_format_is_named() {
    let e = seqmodel_keras::import_bytes(b"hello world".to_vec()).unwrap_err();
    assert!(e.to_string().contains("neither a .keras zip nor an HDF5 file"), "{e}");
}

#[test]
fn unsupported_layers_are_named() {
    let cfg = serde_json::json!({
        "class_name": "Sequential",
        "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 4, 3]}},
            {"class_name": "Conv2D", "config": {"name": "conv", "filters": 2}}
        ]}
    });
    let e = seqmodel_keras::convert(&cfg, "3.15.1").unwrap_err();
    assert_eq!(e.to_string(), "layer `conv`: the Keras layer class `Conv2D` is not supported");
}

#[test]
fn unknown_options_of_described_layers_are_named() {
    let cfg = serde_json::json!({
        "class_name": "Sequential",
        "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 4, 3]}},
            {"class_name": "Conv1D", "config": {"name": "conv", "filters": 2, "kernel_size": [2], "lora_alpha": 3}}
        ]}
    });
    let e = seqmodel_keras::convert(&cfg, "3.15.1").unwrap_err();
    assert_eq!(e.to_string(), "layer `conv`: `lora_alpha=3` of `Conv1D` is not supported");
    // An option seqmodel knows but with a value it does not support fails in the checker.
    let mut cfg = cfg;
    cfg["config"]["layers"][1]["config"] = serde_json::json!({"name": "conv", "filters": 2, "kernel_size": [2], "data_format": "channels_first"});
    let converted = seqmodel_keras::convert(&cfg, "3.15.1").unwrap();
    let e = seqmodel_compiler::compile(&converted.source).unwrap_err();
    assert!(e.render("i.seq", &converted.source, false).contains("channels_last"));
}

#[test]
fn imported_source_is_readable_seq() {
    let imported = seqmodel_keras::import_bytes(case("autoencoder_nested", "model.keras")).unwrap();
    assert!(imported.source.contains("model Encoder("), "{}", imported.source);
    assert!(imported.source.contains("x -> Encoder -> Decoder"), "{}", imported.source);
    // The source compiles on its own.
    seqmodel_compiler::compile(&imported.source).unwrap();
}

/// A described layer needs no code in the importer: its arguments come from the compiler's
/// catalogue, its weights from the IR's description.
#[test]
fn described_layers_import_generically() {
    let cfg = serde_json::json!({
        "class_name": "Sequential",
        "config": {"name": "s", "layers": [
            {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 4, 3]}},
            {"class_name": "Conv1D", "config": {"name": "conv", "filters": 2, "kernel_size": [2], "strides": [1],
                "padding": "causal", "data_format": "channels_last", "dilation_rate": [1], "groups": 1,
                "activation": "relu", "use_bias": false, "kernel_initializer": {"class_name": "GlorotUniform"}}},
            {"class_name": "UpSampling1D", "config": {"name": "up", "size": 3, "trainable": true}},
            {"class_name": "LayerNormalization", "config": {"name": "ln", "axis": [-1], "epsilon": 0.001,
                "center": false, "scale": true, "rms_scaling": false}}
        ]}
    });
    let converted = seqmodel_keras::convert(&cfg, "3.15.1").unwrap();
    assert!(converted.source.contains("UpSampling1D(size=3"), "{}", converted.source);
    let paths: Vec<(&str, &str)> =
        converted.weights.iter().map(|w| (w.key.as_str(), w.keras_path.as_str())).collect();
    assert_eq!(
        paths,
        [("S/conv/kernel", "layers/conv1d/vars/0"), ("S/ln/gamma", "layers/layer_normalization/vars/0")]
    );
    let compiled = seqmodel_compiler::compile(&converted.source).unwrap();
    let p = compiled.program(&converted.main).unwrap();
    assert_eq!(
        p.types[&p.outputs[0].node][0].dims,
        [seqmodel_compiler::ir::Dim::Fixed(12), seqmodel_compiler::ir::Dim::Fixed(2)]
    );
}

/// Keras 3 operations between layers become the language's own forms; others are named.
#[test]
fn keras_operations_import_as_language_forms() {
    let t = |name: &str| serde_json::json!({"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}});
    let full =
        serde_json::json!({"class_name": "__slice__", "config": {"start": null, "stop": null, "step": null}});
    let op = |class: &str, name: &str, args: serde_json::Value| {
        serde_json::json!({"module": "keras.src.ops.numpy", "class_name": class, "name": name,
            "config": {"name": name}, "inbound_nodes": [{"args": args, "kwargs": {}}]})
    };
    let model = |ops: Vec<serde_json::Value>, out: &str| {
        let mut layers = vec![serde_json::json!({"class_name": "InputLayer", "name": "x",
            "config": {"name": "x", "batch_shape": [null, 6, 3]}, "inbound_nodes": []})];
        layers.extend(ops);
        serde_json::json!({"class_name": "Functional", "config": {"name": "f", "layers": layers,
            "input_layers": [["x", 0, 0]], "output_layers": [[out, 0, 0]]}})
    };
    let cfg = model(
        vec![
            op("GetItem", "last", serde_json::json!([t("x"), [full, -1, full]])),
            op("Subtract", "flip", serde_json::json!([1.5, t("last")])),
            op("Divide", "half", serde_json::json!([t("flip"), 2.0])),
            op("Sigmoid", "squash", serde_json::json!([t("half")])),
            {
                let mut g = op("Gelu", "g", serde_json::json!([t("squash")]));
                g["inbound_nodes"][0]["kwargs"] = serde_json::json!({"approximate": true});
                g
            },
        ],
        "g",
    );
    let converted = seqmodel_keras::convert(&cfg, "3.15.1").unwrap();
    let src = &converted.source;
    for want in [
        "x[-1]",
        "Rescaling(scale=-1.0, offset=1.5",
        "Rescaling(scale=0.5, offset=0.0",
        "Activation(\"sigmoid\"",
        "Activation(\"gelu_approximate\"",
    ] {
        assert!(src.contains(want), "{want} missing in\n{src}");
    }
    seqmodel_compiler::compile(src).unwrap_or_else(|e| panic!("{}", e.render("i.seq", src, false)));
    let bad = model(vec![op("Mean", "m", serde_json::json!([t("x")]))], "m");
    let e = seqmodel_keras::convert(&bad, "3.15.1").unwrap_err();
    assert_eq!(e.to_string(), "layer `m`: `Mean` over every axis, the batch included is not supported");
    let bad = model(vec![op("GetItem", "g", serde_json::json!([t("x"), [full, null, full]]))], "g");
    assert!(seqmodel_keras::convert(&bad, "3.15.1").unwrap_err().to_string().contains("a new axis"));
    let bad = model(vec![op("GetItem", "g", serde_json::json!([t("x"), [0, full]]))], "g");
    assert!(seqmodel_keras::convert(&bad, "3.15.1").unwrap_err().to_string().contains("the batch axis"));
    let bad = model(vec![op("Sqrt", "s", serde_json::json!([t("x")]))], "s");
    assert_eq!(
        seqmodel_keras::convert(&bad, "3.15.1").unwrap_err().to_string(),
        "layer `s`: the Keras operation `Sqrt` is not supported"
    );
}

/// A call's keyword arguments are understood or refused by name: none is passed over.
#[test]
fn call_keywords_the_importer_does_not_know_are_errors() {
    let t = |name: &str| serde_json::json!({"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}});
    let with_kwargs = |kwargs: serde_json::Value| {
        serde_json::json!({"class_name": "Functional", "config": {"name": "f", "layers": [
            {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [null, 6, 3]}, "inbound_nodes": []},
            {"class_name": "LSTM", "name": "l", "config": {"name": "l", "units": 2},
             "inbound_nodes": [{"args": [t("x")], "kwargs": kwargs}]}],
            "input_layers": [["x", 0, 0]], "output_layers": [["l", 0, 0]]}})
    };
    for ok in [serde_json::json!({"training": false, "mask": null}), serde_json::json!({"training": null})] {
        seqmodel_keras::convert(&with_kwargs(ok), "3.15.1").unwrap();
    }
    for (kwargs, named) in [
        (serde_json::json!({"training": true}), "training=true"),
        (serde_json::json!({"constants": [t("x")]}), "constants="),
    ] {
        let e = seqmodel_keras::convert(&with_kwargs(kwargs), "3.15.1").unwrap_err().to_string();
        assert!(e.contains(named), "{e}");
    }
}

/// A `.keras` whose config inflates far beyond its compressed size is refused before it is
/// read whole (a 6 MB file inflating to 6 GB was read into memory).
#[test]
fn zip_bombs_are_refused() {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        z.start_file("config.json", opts).unwrap();
        let mut text = vec![b' '; 8 << 20];
        text.extend_from_slice(b"{}");
        z.write_all(&text).unwrap();
        z.finish().unwrap();
    }
    let bytes = buf.into_inner();
    assert!(bytes.len() < 100_000, "{}", bytes.len());
    let e = seqmodel_keras::import_bytes(bytes).unwrap_err();
    assert!(e.to_string().contains("zip bomb"), "{e}");
}

/// A `.keras` whose weights file links a group inside itself (an HDF5 hard-link cycle)
/// imports at once: each group is listed once (it took 551 s before, walking ever longer
/// paths from the root).
#[test]
fn a_hard_link_cycle_in_the_weights_is_walked_once() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hard_link_cycle.keras");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(
            seqmodel_keras::import_file(&path).map(|i| i.program.param_count()).map_err(|e| e.to_string()),
        );
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the import hangs on a link cycle");
    assert_eq!(got, Ok(66));
}

/// A functional config that lists 10,000 chained layers last-first converts in linear time
/// (a pass per layer made it quadratic: over a minute), to the same text as in order.
#[test]
fn a_functional_config_in_reverse_order_converts_in_linear_time() {
    let n = 10_000;
    let mut layers = vec![serde_json::json!({
        "class_name": "InputLayer", "name": "in",
        "config": { "name": "in", "batch_shape": [null, 4], "dtype": "float32" }, "inbound_nodes": []
    })];
    for i in 0..n {
        let from = if i == 0 { "in".to_string() } else { format!("d{}", i - 1) };
        layers.push(serde_json::json!({
            "class_name": "Dense", "name": format!("d{i}"),
            "config": { "name": format!("d{i}"), "units": 4, "activation": "linear", "use_bias": true },
            "inbound_nodes": [{ "args": [{ "class_name": "__keras_tensor__", "config": { "keras_history": [from, 0, 0] } }], "kwargs": {} }]
        }));
    }
    let config = |layers: Vec<serde_json::Value>| {
        serde_json::json!({ "class_name": "Functional", "config": {
            "name": "deep", "layers": layers,
            "input_layers": [["in", 0, 0]], "output_layers": [[format!("d{}", n - 1), 0, 0]]
        }})
    };
    let forward = config(layers.clone());
    layers.reverse();
    let backward = config(layers);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let a = seqmodel_keras::convert(&forward, "3.15.1").map(|c| c.source).map_err(|e| e.to_string());
        let b = seqmodel_keras::convert(&backward, "3.15.1").map(|c| c.source).map_err(|e| e.to_string());
        let _ = tx.send((a, b));
    });
    let (a, b) = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("quadratic in the layers");
    assert_eq!(a, b);
    assert_eq!(a.unwrap().matches("Dense(4").count(), n);
}

/// A 17 KB legacy `.h5` whose Dense kernel is declared as a chunked 10^6 x 10^3 dataset with no
/// chunk written (HDF5 fills it with zeros on reading) is refused before any of the 4 GB is
/// allocated, naming the dataset (import allocated 7.8 GB before the shape check).
#[test]
fn a_dataset_declaring_more_than_the_file_holds_is_refused_before_reading() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lying_kernel.h5");
    assert!(std::fs::metadata(&path).unwrap().len() < 20_000);
    let e = seqmodel_keras::import_file(&path).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("model_weights/dense/sequential/dense/kernel"), "{e}");
    assert!(e.contains("4000000000 bytes") && e.contains("limit"), "{e}");
}
