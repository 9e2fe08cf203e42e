//! Graphviz DOT output of a checked program.

use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use seqmodel_ir::{Op, Program};

/// The program as a DOT digraph: one box per node with its layer, class and output type.
pub fn to_dot(p: &Program) -> String {
    let mut s = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
        esc(&p.name)
    );
    for n in p.topo_order() {
        let node = &p.graph[n];
        let tys: Vec<String> = p.types[&n].iter().map(|t| t.display(&p.symbols)).collect();
        let shape = if matches!(node.op, Op::Input { .. }) { ", shape=ellipse" } else { "" };
        s += &format!(
            "  n{} [label=\"{}: {}\\n{}\"{shape}];\n",
            n.index(),
            esc(&node.layer),
            node.op.kind_name(),
            esc(&tys.join(", "))
        );
    }
    for e in (&p.graph).edge_references() {
        s += &format!("  n{} -> n{};\n", e.source().index(), e.target().index());
    }
    for (i, o) in p.outputs.iter().enumerate() {
        s += &format!("  out{i} [label=\"output {i}\", shape=ellipse];\n  n{} -> out{i};\n", o.node.index());
    }
    s += "}\n";
    s
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
