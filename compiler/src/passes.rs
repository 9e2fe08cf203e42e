//! Inference-time optimisation passes over a checked program (the generated code runs the
//! optimised program; training uses the program as written). Each pass preserves the
//! numbers; the equivalence tests compare optimised generated code with the interpreter.

use petgraph::Direction;
use petgraph::visit::EdgeRef;
use seqmodel_ir::{Activation, Edge, NodeIndex, Op, Port, Program};

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

fn uses(p: &Program, n: NodeIndex) -> usize {
    p.graph.edges_directed(n, Direction::Outgoing).count() + p.outputs.iter().filter(|o| o.node == n).count()
}

/// `TimeDistributed(Dense)` and `TimeDistributed(Activation)` compute the same as the layer
/// applied to the last axis of the whole sequence: drop the fold/unfold pair (two copies of
/// the sequence) and run the layer on `[B, T, F]` directly (the mask passes through as before).
pub fn unwrap_row_wise_time_distributed(p: &mut Program) {
    let unfolds: Vec<NodeIndex> =
        p.graph.node_indices().filter(|n| matches!(p.graph[*n].op, Op::UnfoldTime)).collect();
    for u in unfolds {
        let ins = p.node_inputs(u);
        let [inner, outer] = ins.as_slice() else { continue };
        let layer = inner.node;
        if inner.port != 0
            || !matches!(p.graph[layer].op, Op::Dense { .. } | Op::Activation(_))
            || uses(p, layer) != 1
        {
            continue;
        }
        let layer_ins = p.node_inputs(layer);
        let [folded] = layer_ins.as_slice() else { continue };
        let fold = folded.node;
        if !matches!(p.graph[fold].op, Op::FoldTime)
            || uses(p, fold) != 1
            || p.node_inputs(fold).first() != Some(outer)
        {
            continue;
        }
        let unfolded_types = p.types[&u].clone();
        // layer reads the sequence itself, and replaces the unfold for its consumers.
        p.graph.add_edge(outer.node, layer, Edge { src_port: outer.port, dst_port: 0 });
        p.graph.remove_node(fold);
        p.types.remove(&fold);
        p.spans.remove(&fold);
        p.types.insert(layer, unfolded_types);
        bypass(p, u, Port { node: layer, port: 0 });
    }
}

/// `Dense` (linear) followed by an `Activation` it alone feeds: apply the activation inside
/// the Dense, on its output rows (softmax fuses into the Dense, as DESIGN.md plans).
pub fn fuse_dense_activation(p: &mut Program) {
    let acts: Vec<NodeIndex> =
        p.graph.node_indices().filter(|n| matches!(p.graph[*n].op, Op::Activation(_))).collect();
    for a in acts {
        let Op::Activation(act) = p.graph[a].op else { continue };
        let ins = p.node_inputs(a);
        let [src] = ins.as_slice() else { continue };
        if src.port != 0 || uses(p, src.node) != 1 {
            continue;
        }
        let Op::Dense { activation, .. } = &mut p.graph[src.node].op else { continue };
        if *activation != Activation::Linear {
            continue;
        }
        *activation = act;
        bypass(p, a, *src);
    }
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
