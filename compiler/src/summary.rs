//! A Keras `model.summary()`-like table of a checked program.

use seqmodel_ir::{LayerOp, Op, Program, node_weight_specs};
use std::collections::HashSet;

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `name (Class)`.
    pub layer: String,
    /// Keras-style output shape(s), `(None, T, 8)`.
    pub output: String,
    /// Parameters first counted in this row (shared weights count once).
    pub params: usize,
}

/// The rows of the summary: one per layer; a nested model's layers fold into one row.
pub fn rows(p: &Program) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut seen = HashSet::new();
    let mut group: Option<String> = None;
    for n in p.topo_order() {
        let node = &p.graph[n];
        // A call's `mask=` is part of the call, not a layer of its own.
        if matches!(node.op, Op::FoldTime | Op::Layer(LayerOp::SetMask(_))) {
            continue;
        }
        let params: usize = node_weight_specs(node)
            .into_iter()
            .filter(|w| seen.insert(w.key.clone()))
            .map(|w| w.shape.iter().product::<usize>())
            .sum();
        let shape =
            p.types[&n].iter().map(|t| t.display_keras(&p.symbols, p.batch)).collect::<Vec<_>>().join(", ");
        let nested = node
            .scope
            .strip_prefix(&p.name)
            .and_then(|s| s.strip_prefix('/'))
            .map(|s| s.split('/').next().unwrap_or(s).to_string());
        if let Some(sub) = nested {
            let label = format!("{} (Model)", sub.to_lowercase());
            if let (true, Some(last)) = (group.as_deref() == Some(sub.as_str()), rows.last_mut()) {
                last.output = shape;
                last.params += params;
                continue;
            }
            group = Some(sub);
            rows.push(Row { layer: label, output: shape, params });
            continue;
        }
        group = None;
        let class = match &node.op {
            Op::UnfoldTime => "TimeDistributed",
            Op::TimeSlice { .. } | Op::Layer(LayerOp::Slice(_)) if node.layer == "slice" => "Slice",
            op => op.kind_name(),
        };
        if matches!(node.op, Op::UnfoldTime) {
            // The wrapped layer's parameters were counted on its own node; fold them in.
            if let Some(last) = rows.last_mut().filter(|l| l.output.is_empty()) {
                last.layer = format!("{} ({class})", node.layer);
                last.output = shape;
                continue;
            }
        }
        rows.push(Row { layer: format!("{} ({class})", node.layer), output: shape, params });
        if p.graph
            .neighbors_directed(n, petgraph::Direction::Incoming)
            .any(|i| matches!(p.graph[i].op, Op::FoldTime))
        {
            // Inner layer of a TimeDistributed: its row is completed by the UnfoldTime node.
            if let Some(last) = rows.last_mut() {
                last.output.clear();
            }
        }
    }
    rows
}

/// Renders the summary table with totals.
pub fn render(p: &Program) -> String {
    let rows = rows(p);
    let total = p.param_count();
    let w0 = rows.iter().map(|r| r.layer.len()).max().unwrap_or(0).max("Layer (type)".len()) + 2;
    let w1 = rows.iter().map(|r| r.output.len()).max().unwrap_or(0).max("Output Shape".len()) + 2;
    let w2 = 12;
    let width = w0 + w1 + w2;
    let mut s = format!("Model: \"{}\"\n", p.name);
    s += &format!("{}\n", "━".repeat(width));
    s += &format!("{:<w0$}{:<w1$}{:>w2$}\n", "Layer (type)", "Output Shape", "Param #");
    s += &format!("{}\n", "━".repeat(width));
    for (i, r) in rows.iter().enumerate() {
        s += &format!("{:<w0$}{:<w1$}{:>w2$}\n", r.layer, r.output, r.params);
        if i + 1 < rows.len() {
            s += &format!("{}\n", "─".repeat(width));
        }
    }
    s += &format!("{}\n", "━".repeat(width));
    let trainable = p.trainable_param_count();
    s += &format!(
        " Total params: {total}\n Trainable params: {trainable}\n Non-trainable params: {}\n",
        total - trainable
    );
    s
}
