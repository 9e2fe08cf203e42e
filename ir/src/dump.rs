//! A stable, readable text form of a program, for snapshots and debugging.

use std::fmt::Write;

use crate::{Op, Program};

impl Program {
    /// One line per node: id, layer, operation with attributes, output types, inputs.
    ///
    /// The format is for people and snapshot tests; it is not parsed back.
    pub fn dump(&self) -> String {
        let mut s = format!("program {}", self.name);
        if let Some(b) = self.batch {
            let _ = write!(s, " (batch {b})");
        }
        s.push('\n');
        for n in self.topo_order() {
            let node = &self.graph[n];
            let tys: Vec<String> = self.types[&n].iter().map(|t| t.display(&self.symbols)).collect();
            let ins: Vec<String> =
                self.node_inputs(n).iter().map(|p| format!("%{}.{}", p.node.index(), p.port)).collect();
            let op = match &node.op {
                Op::Rnn(a) => format!(
                    "{}(units={}, act={}, rec_act={}, bias={}, seq={}, state={}, back={}, stateful={})",
                    a.cell.keras_name(),
                    a.units,
                    a.activation.name(),
                    a.recurrent_activation.name(),
                    a.use_bias,
                    a.return_sequences,
                    a.return_state,
                    a.go_backwards,
                    a.stateful
                ),
                other => format!("{other:?}"),
            };
            let _ = write!(s, "%{} {} [{}] = {op}({})", n.index(), node.layer, node.scope, ins.join(", "));
            let _ = write!(s, " -> {}", tys.join(", "));
            if let Some(w) = &node.weights {
                let _ = write!(s, " weights={w}");
            }
            s.push('\n');
        }
        let outs: Vec<String> =
            self.outputs.iter().map(|p| format!("%{}.{}", p.node.index(), p.port)).collect();
        let _ = writeln!(s, "outputs {} ; params {}", outs.join(", "), self.param_count());
        s
    }
}
