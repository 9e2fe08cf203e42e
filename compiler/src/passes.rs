//! Inference-time optimisation passes over a checked program (the generated code runs the
//! optimised program; training runs only the rewrites of [`seqmodel_ir::rewrite`], which hold
//! for gradients too). Each pass preserves the numbers; the equivalence tests compare
//! optimised generated code with the interpreter.

use petgraph::Direction;
use seqmodel_ir::rewrite::bypass;
pub use seqmodel_ir::rewrite::{fuse_dense_activation, unwrap_row_wise_time_distributed};
use seqmodel_ir::{Activation, Edge, NodeIndex, Op, Program};

/// Runs every pass: identity removal, RepeatVector → RNN fusion, TimeDistributed removal
/// around row-wise layers, then activation fusion into Dense.
pub fn optimize(p: &Program) -> Program {
    let mut p = p.clone();
    remove_identities(&mut p);
    fuse_repeat_rnn(&mut p);
    unwrap_row_wise_time_distributed(&mut p);
    fuse_dense_activation(&mut p);
    p
}

/// `Activation("linear")` and (at inference) `Dropout` compute the identity: remove them.
pub fn remove_identities(p: &mut Program) {
    let ids: Vec<NodeIndex> = p
        .graph
        .node_indices()
        .filter(|n| matches!(p.graph[*n].op, Op::Activation(Activation::Linear) | Op::Dropout { .. }))
        .collect();
    for n in ids {
        if let Some(src) = p.node_inputs(n).first().copied() {
            bypass(p, n, src);
        }
    }
}

/// An RNN fed only by a `RepeatVector` (used nowhere else) computes its input projection
/// once per sequence instead of once per step.
pub fn fuse_repeat_rnn(p: &mut Program) {
    let rnns: Vec<NodeIndex> =
        p.graph.node_indices().filter(|n| matches!(p.graph[*n].op, Op::Rnn(_))).collect();
    for r in rnns {
        let ins = p.node_inputs(r);
        let [src] = ins.as_slice() else { continue };
        if !matches!(p.graph[src.node].op, Op::RepeatVector) {
            continue;
        }
        let uses = p.graph.edges_directed(src.node, Direction::Outgoing).count();
        if uses != 1 || p.outputs.iter().any(|o| o.node == src.node) {
            continue;
        }
        let Some(vector) = p.node_inputs(src.node).first().copied() else { continue };
        let steps = p.types[&src.node][0].dims[0];
        let Op::Rnn(attrs) = p.graph[r].op else { continue };
        let rep = src.node;
        p.graph.remove_node(rep);
        p.types.remove(&rep);
        p.spans.remove(&rep);
        p.graph.add_edge(vector.node, r, Edge { src_port: vector.port, dst_port: 0 });
        p.graph[r].op = Op::RepeatRnn { rnn: attrs, steps };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_distributed_row_layers_run_on_the_sequence_with_the_activation_fused() {
        let src = "model M(x: [T, 3]) -> [T, 5] { x -> LSTM(4, return_sequences=true) -> TimeDistributed(Dense(5)) -> TimeDistributed(Activation(\"softmax\")) }";
        let p = crate::compile(src).unwrap().main().unwrap().clone();
        let o = optimize(&p);
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
        let p = crate::compile(src).unwrap().main().unwrap().clone();
        let o = optimize(&p);
        let kinds: Vec<&str> = o.topo_order().iter().map(|n| o.graph[*n].op.kind_name()).collect();
        assert_eq!(kinds, ["InputLayer", "LSTM", "Dense"]);
        assert!(o.graph.node_weights().any(|n| matches!(n.op, Op::RepeatRnn { .. })));
        assert_eq!(o.param_count(), p.param_count());
        assert_eq!(o.output_types(), p.output_types());
    }
}
