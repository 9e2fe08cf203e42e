//! The inference pipeline (`seqmodel_ir::passes`) on checked programs: what it removes and
//! fuses, and that it keeps the types, the parameters and the IR's invariants.

use seqmodel_ir::passes::for_inference;
use seqmodel_ir::{Activation, Op};

#[test]
fn time_distributed_row_layers_run_on_the_sequence_with_the_activation_fused() {
    let src = "model M(x: [T, 3]) -> [T, 5] { x -> LSTM(4, return_sequences=true) -> TimeDistributed(Dense(5)) -> TimeDistributed(Activation(\"softmax\")) }";
    let p = seqmodel_compiler::compile(src).unwrap().main().unwrap().clone();
    let mut o = p.clone();
    for_inference(&mut o);
    let kinds: Vec<&str> = o.topo_order().iter().map(|n| o.graph[*n].op.kind_name()).collect();
    assert_eq!(kinds, ["InputLayer", "LSTM", "Dense"]);
    assert!(
        o.graph.node_weights().any(|n| matches!(n.op, Op::Dense { activation: Activation::Softmax, .. }))
    );
    assert_eq!(o.output_types(), p.output_types());
    assert_eq!(o.param_count(), p.param_count());
}

#[test]
fn passes_remove_and_fuse() {
    let src = "model M(z: [4]) -> [6, 1] { z -> RepeatVector(6) -> LSTM(3, return_sequences=true) -> Dropout(0.5) -> TimeDistributed(Dense(1)) -> Activation(\"linear\") }";
    let p = seqmodel_compiler::compile(src).unwrap().main().unwrap().clone();
    let mut o = p.clone();
    for_inference(&mut o);
    let kinds: Vec<&str> = o.topo_order().iter().map(|n| o.graph[*n].op.kind_name()).collect();
    assert_eq!(kinds, ["InputLayer", "LSTM", "Dense"]);
    assert!(o.graph.node_weights().any(|n| matches!(n.op, Op::RepeatRnn { .. })));
    assert_eq!(o.param_count(), p.param_count());
    assert_eq!(o.output_types(), p.output_types());
}

/// Every example program, and the same after the inference and the training passes,
/// satisfies `Program::validate` (side tables without removed nodes, edges in topological
/// order).
#[test]
fn every_example_stays_valid_through_both_pipelines() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "seq") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for p in seqmodel_compiler::compile(&src).unwrap().programs {
            p.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (mut inf, mut tr) = (p.clone(), p.clone());
            for_inference(&mut inf);
            seqmodel_ir::passes::for_training(&mut tr);
            inf.validate().unwrap_or_else(|e| panic!("{} after for_inference: {e}", path.display()));
            tr.validate().unwrap_or_else(|e| panic!("{} after for_training: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked > 10);
}

/// `validate` catches what a careless pass would leave behind.
#[test]
fn validate_catches_broken_invariants() {
    let src = "model M(x: [T, 3]) -> [T, 2] { x -> LSTM(4, return_sequences=true) -> Dense(2) }";
    let p = seqmodel_compiler::compile(src).unwrap().main().unwrap().clone();
    let dense = p.graph.node_indices().next_back().unwrap();
    let mut no_type = p.clone();
    no_type.types.remove(&dense);
    assert!(no_type.validate().unwrap_err().to_string().contains("has no type"));
    let mut stale = p.clone();
    stale.graph.remove_node(dense);
    assert!(stale.validate().is_err(), "a removed node's type and span remain");
    let mut removed = p.clone();
    removed.outputs.clear();
    removed.remove_node(dense);
    assert!(removed.validate().is_ok(), "remove_node keeps the side tables consistent");
}
