//! Inference-time optimisation passes over a checked program (the generated code runs the
//! optimised program; training uses the program as written). Each pass preserves the
//! numbers; the equivalence tests compare optimised generated code with the interpreter.

use petgraph::Direction;
use petgraph::visit::EdgeRef;
use seqmodel_ir::{Activation, Edge, NodeIndex, Op, Port, Program};

/// Runs every pass: identity removal, then RepeatVector → RNN fusion.
pub fn optimize(p: &Program) -> Program {
    let mut p = p.clone();
    remove_identities(&mut p);
    fuse_repeat_rnn(&mut p);
    p
}

/// Replaces every use of `(node, 0)` by `to` and deletes `node`.
fn bypass(p: &mut Program, node: NodeIndex, to: Port) {
    let outgoing: Vec<(NodeIndex, Edge)> =
        p.graph.edges_directed(node, Direction::Outgoing).map(|e| (e.target(), *e.weight())).collect();
    for (target, e) in outgoing {
        p.graph.add_edge(to.node, target, Edge { src_port: to.port, dst_port: e.dst_port });
    }
    for o in &mut p.outputs {
        if o.node == node {
            *o = to;
        }
    }
    p.graph.remove_node(node);
    p.types.remove(&node);
    p.spans.remove(&node);
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
    fn passes_remove_and_fuse() {
        let src = "model M(z: [4]) -> [6, 1] { z -> RepeatVector(6) -> LSTM(3, return_sequences=true) -> Dropout(0.5) -> TimeDistributed(Dense(1)) -> Activation(\"linear\") }";
        let p = crate::compile(src).unwrap().main().unwrap().clone();
        let o = optimize(&p);
        let kinds: Vec<&str> = o.topo_order().iter().map(|n| o.graph[*n].op.kind_name()).collect();
        assert_eq!(kinds, ["InputLayer", "LSTM", "TimeDistributed", "Dense", "TimeDistributed(end)"]);
        assert!(o.graph.node_weights().any(|n| matches!(n.op, Op::RepeatRnn { .. })));
        assert_eq!(o.param_count(), p.param_count());
        assert_eq!(o.output_types(), p.output_types());
    }
}
