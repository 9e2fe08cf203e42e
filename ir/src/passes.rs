//! The one pass pipeline: graph rewrites that keep every number of a program.
//! [`for_inference`] runs before the interpreter and before code generation (so `seqc run`
//! and the generated code execute the same graph); [`for_training`] runs before training
//! and holds for gradients too. In debug builds every pass ends with
//! [`Program::validate`].

use petgraph::Direction;
use petgraph::visit::EdgeRef;

use crate::{Activation, Edge, NodeIndex, Op, Port, Program};

/// The inference pipeline: identities removed, `RepeatVector → RNN` fused, row-wise
/// `TimeDistributed` layers unwrapped, then activations fused into Dense.
pub fn for_inference(p: &mut Program) {
    run(p, remove_identities);
    run(p, fuse_repeat_rnn);
    for_training(p);
}

/// The rewrites that hold for training as well as inference: row-wise `TimeDistributed`
/// layers unwrapped, then activations fused into Dense.
pub fn for_training(p: &mut Program) {
    run(p, unwrap_row_wise_time_distributed);
    run(p, fuse_dense_activation);
}

/// Runs one pass, then (debug builds) checks the program's invariants.
fn run(p: &mut Program, pass: fn(&mut Program)) {
    pass(p);
    if cfg!(debug_assertions)
        && let Err(e) = p.validate()
    {
        panic!("a pass broke the program `{}`: {e}", p.name);
    }
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
        if !matches!(p.graph[src.node].op, Op::RepeatVector) || uses(p, src.node) != 1 {
            continue;
        }
        let Some(vector) = p.node_inputs(src.node).first().copied() else { continue };
        let steps = p.types[&src.node][0].dims[0];
        let Op::Rnn(attrs) = p.graph[r].op else { continue };
        p.remove_node(src.node);
        p.graph.add_edge(vector.node, r, Edge { src_port: vector.port, dst_port: 0 });
        p.graph[r].op = Op::RepeatRnn { rnn: attrs, steps };
    }
}

/// How many edges and program outputs read node `n`.
pub fn uses(p: &Program, n: NodeIndex) -> usize {
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
        p.remove_node(fold);
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
pub fn bypass(p: &mut Program, node: NodeIndex, to: Port) {
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
    p.remove_node(node);
}
