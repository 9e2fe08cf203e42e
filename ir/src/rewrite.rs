//! Graph rewrites that keep every number, and every gradient, of a program: the compiler
//! runs them before generating inference code, the trainer before training.

use petgraph::Direction;
use petgraph::visit::EdgeRef;

use crate::{Activation, Edge, NodeIndex, Op, Port, Program};

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
    p.graph.remove_node(node);
    p.types.remove(&node);
    p.spans.remove(&node);
}

/// The rewrites that hold for training as well as inference: row-wise `TimeDistributed`
/// layers unwrapped, then activations fused into Dense.
pub fn for_training(p: &mut Program) {
    unwrap_row_wise_time_distributed(p);
    fuse_dense_activation(p);
}
