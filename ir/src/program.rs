//! The checked program: a graph of [`Op`]s with side tables for types and source spans.

use std::collections::{BTreeMap, HashMap};

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;

use crate::{CellKind, Op, TensorType};

/// A data edge: output `src_port` of the source node feeds input `dst_port` of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Output port of the producer.
    pub src_port: usize,
    /// Input port of the consumer.
    pub dst_port: usize,
}

/// One node: an operation of a layer instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// The layer's name (Keras-style: given with `name=` or `lstm`, `lstm_1`, ...).
    pub layer: String,
    /// The model path the node came from, outermost first (`Autoencoder/Encoder`).
    pub scope: String,
    /// Key prefix of the node's weights; nodes of one shared layer instance have the same key.
    pub weights: Option<String>,
}

/// A reference to one output of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Port {
    /// The node.
    pub node: NodeIndex,
    /// Which of its outputs.
    pub port: usize,
}

/// A model input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The input's name in the source.
    pub name: String,
    /// Its type (without batch).
    pub ty: TensorType,
    /// Its `Op::Input` node.
    pub node: NodeIndex,
}

/// One weight tensor the program needs.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightSpec {
    /// Full key, `<layer key>/<variable>` (e.g. `Encoder/lstm/kernel`).
    pub key: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Whether the optimizer updates it (false for statistics training sets itself, as
    /// BatchNormalization's moving mean and variance).
    pub trainable: bool,
    /// The value every element starts at when it is not random (see
    /// [`crate::WeightVar::initial`]).
    pub initial: Option<f32>,
}

/// A checked model: every node typed, every input port filled, no cycles.
///
/// Invariants (established by the compiler, relied on by the runtime):
/// - every node is inserted after all its inputs (so insertion order is a topological
///   order and the graph is acyclic), and its input ports `0..n` have exactly one edge each;
/// - `types[node][port]` is known for every output port of every node;
/// - nested models are inlined; their nodes carry the nested `scope`, and a model called
///   twice shares its weight keys (the key names the model definition, not the call);
/// - weights with the same key have the same shape ([`Program::weight_specs`] lists each once).
#[derive(Debug, Clone)]
pub struct Program {
    /// The model's name.
    pub name: String,
    /// Doc comment lines of the model.
    pub docs: Vec<String>,
    /// The graph.
    pub graph: StableDiGraph<Node, Edge>,
    /// The inputs in declaration order.
    pub inputs: Vec<InputSpec>,
    /// The outputs in declaration order.
    pub outputs: Vec<Port>,
    /// Types of every node output.
    pub types: HashMap<NodeIndex, Vec<TensorType>>,
    /// Names of dimension symbols (`Dim::Sym` ids index this).
    pub symbols: Vec<String>,
    /// Static batch size (`where batch = N`), required by stateful layers.
    pub batch: Option<usize>,
    /// Source byte span of each node (side table; empty for programs built in code).
    pub spans: HashMap<NodeIndex, (usize, usize)>,
}

impl Program {
    /// The inputs of `node`, ordered by port.
    pub fn node_inputs(&self, node: NodeIndex) -> Vec<Port> {
        let mut ins: Vec<(usize, Port)> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .map(|e| (e.weight().dst_port, Port { node: e.source(), port: e.weight().src_port }))
            .collect();
        ins.sort_by_key(|(p, _)| *p);
        ins.into_iter().map(|(_, p)| p).collect()
    }

    /// Nodes in insertion order, which puts every node after its inputs (an invariant of
    /// the builder) and matches the order the layers were written in.
    pub fn topo_order(&self) -> Vec<NodeIndex> {
        self.graph.node_indices().collect()
    }

    /// The type of one node output.
    pub fn port_type(&self, p: Port) -> &TensorType {
        &self.types[&p.node][p.port]
    }

    /// The output types.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.outputs.iter().map(|p| self.port_type(*p).clone()).collect()
    }

    /// Every weight the program needs, each key once, in graph order.
    pub fn weight_specs(&self) -> Vec<WeightSpec> {
        let mut seen = BTreeMap::new();
        let mut out = Vec::new();
        for n in self.topo_order() {
            for spec in node_weight_specs(&self.graph[n]) {
                if seen.insert(spec.key.clone(), ()).is_none() {
                    out.push(spec);
                }
            }
        }
        out
    }

    /// Total number of weight scalars (Keras's "Total params").
    pub fn param_count(&self) -> usize {
        self.weight_specs().iter().map(|w| w.shape.iter().product::<usize>()).sum()
    }

    /// Number of weight scalars the optimizer updates (Keras's "Trainable params").
    pub fn trainable_param_count(&self) -> usize {
        self.weight_specs().iter().filter(|w| w.trainable).map(|w| w.shape.iter().product::<usize>()).sum()
    }

    /// Removes `node`, its edges and its entries in the side tables (types, spans). The
    /// program's outputs must no longer name it (see [`crate::passes::bypass`]).
    pub fn remove_node(&mut self, node: NodeIndex) -> Option<Node> {
        self.types.remove(&node);
        self.spans.remove(&node);
        self.graph.remove_node(node)
    }

    /// Checks the documented invariants: every node typed (and spanned, for a program built
    /// from text), no side-table entry for a removed node, every edge from an existing
    /// output port to an input port of a later node (insertion order stays a topological
    /// order), input ports `0..n` filled once each, inputs and outputs naming live nodes.
    ///
    /// ```
    /// # use seqmodel_ir::{Op, Program, NodeDesc, Dim, DType};
    /// let nodes = [NodeDesc { op: Op::Input { index: 0 }, layer: "x", scope: "M", weights: None,
    ///     inputs: &[], outputs: &[(&[Dim::Fixed(3)], DType::F32)] }];
    /// let p = Program::from_descs("M", &nodes, &[("x", 0)], &[(0, 0)], &[], None);
    /// assert!(p.validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), InvalidProgram> {
        let bad = |node: Option<NodeIndex>, what: String| {
            Err(InvalidProgram { node: node.map(|n| n.index()), what })
        };
        for n in self.graph.node_indices() {
            let Some(types) = self.types.get(&n) else { return bad(Some(n), "has no type".into()) };
            if types.is_empty() {
                return bad(Some(n), "has no output".into());
            }
            if !self.spans.is_empty() && !self.spans.contains_key(&n) {
                return bad(Some(n), "has no source span".into());
            }
            let mut ports: Vec<usize> = Vec::new();
            for e in self.graph.edges_directed(n, Direction::Incoming) {
                let src = e.source();
                if src.index() >= n.index() {
                    return bad(Some(n), format!("reads node {} which does not come before it", src.index()));
                }
                if e.weight().src_port >= self.types.get(&src).map_or(0, Vec::len) {
                    return bad(
                        Some(n),
                        format!(
                            "reads output {} of node {}, which has no such output",
                            e.weight().src_port,
                            src.index()
                        ),
                    );
                }
                ports.push(e.weight().dst_port);
            }
            ports.sort_unstable();
            if ports.iter().enumerate().any(|(i, p)| *p != i) {
                return bad(Some(n), format!("has input ports {ports:?}, not 0..{}", ports.len()));
            }
        }
        if let Some(n) = self.types.keys().chain(self.spans.keys()).find(|n| !self.graph.contains_node(**n)) {
            return bad(Some(*n), "is removed but still has a type or span".into());
        }
        for (i, spec) in self.inputs.iter().enumerate() {
            if !matches!(self.graph.node_weight(spec.node), Some(Node { op: Op::Input { index }, .. }) if *index == i)
            {
                return bad(Some(spec.node), format!("is not input {i} (`{}`)", spec.name));
            }
        }
        for o in &self.outputs {
            if self.types.get(&o.node).is_none_or(|t| o.port >= t.len()) {
                return bad(Some(o.node), format!("is a model output with no output {}", o.port));
            }
        }
        Ok(())
    }

    /// A fingerprint of the architecture: FNV-1a (64 bits) of every node's operation with all
    /// its attributes, weight key, inputs and output types, in order, and of the inputs,
    /// outputs and batch size. Layout and comments of the source do not change it; a changed
    /// activation, direction, size or wiring does. Weight files record it so that weights
    /// of another architecture are not loaded by mistake.
    pub fn fingerprint(&self) -> u64 {
        let order = self.topo_order();
        let pos: HashMap<NodeIndex, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut text = format!("{:?}|", self.batch);
        for n in &order {
            let node = &self.graph[*n];
            let ins: Vec<String> =
                self.node_inputs(*n).iter().map(|p| format!("{}.{}", pos[&p.node], p.port)).collect();
            let tys: Vec<String> = self.types[n].iter().map(|t| t.display(&self.symbols)).collect();
            text.push_str(&format!("{:?}|{:?}|{}|{}\n", node.op, node.weights, ins.join(","), tys.join(",")));
        }
        for i in &self.inputs {
            text.push_str(&format!("in {} {}\n", pos[&i.node], i.ty.display(&self.symbols)));
        }
        for o in &self.outputs {
            text.push_str(&format!("out {}.{}\n", pos[&o.node], o.port));
        }
        text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// The dimension symbols that no input determines (`N` of `OneToMany<N>(x: [8])`): a
    /// caller must give their sizes.
    pub fn free_symbols(&self) -> Vec<usize> {
        (0..self.symbols.len())
            .filter(|id| !self.is_derived_symbol(*id))
            .filter(|id| {
                !self
                    .inputs
                    .iter()
                    .any(|i| i.ty.dims.iter().any(|d| matches!(d, crate::Dim::Sym { id: s, .. } if s == id)))
            })
            .collect()
    }

    /// Whether symbol `id` is a length the checker derived from another (after a strided
    /// window): its name is the formula (`(T-4)/2`), not an identifier, and the runtime
    /// computes it from the data, so it is never an argument.
    pub fn is_derived_symbol(&self, id: usize) -> bool {
        self.symbols.get(id).is_some_and(|s| !s.chars().all(|c| c.is_alphanumeric() || c == '_'))
    }

    /// Whether any layer keeps state across calls.
    pub fn is_stateful(&self) -> bool {
        self.graph.node_weights().any(|n| match &n.op {
            Op::Rnn(a) | Op::RepeatRnn { rnn: a, .. } => a.stateful,
            Op::Bidirectional { forward, .. } => forward.stateful,
            _ => false,
        })
    }
}

/// A broken invariant of a [`Program`] (a compiler or pass bug, never a user error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidProgram {
    /// The node concerned (its index), if any.
    pub node: Option<usize>,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for InvalidProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.node {
            Some(n) => write!(f, "node {n} {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

impl std::error::Error for InvalidProgram {}

/// The weights one node needs, Keras's variables in Keras's order.
pub fn node_weight_specs(node: &Node) -> Vec<WeightSpec> {
    match &node.weights {
        Some(prefix) => op_weight_specs(&node.op, prefix),
        None => Vec::new(),
    }
}

/// The weights of an operation stored under `prefix`, Keras's variables in Keras's order:
/// the one place where weight keys are spelled.
pub fn op_weight_specs(op: &Op, prefix: &str) -> Vec<WeightSpec> {
    let key = |v: &str| format!("{prefix}/{v}");
    match op {
        Op::Dense { units, input_dim, use_bias, .. } => {
            let mut v = vec![WeightSpec {
                key: key("kernel"),
                shape: vec![*input_dim, *units],
                trainable: true,
                initial: None,
            }];
            if *use_bias {
                v.push(WeightSpec { key: key("bias"), shape: vec![*units], trainable: true, initial: None });
            }
            v
        }
        Op::Embedding { input_dim, output_dim, .. } => {
            vec![WeightSpec {
                key: key("embeddings"),
                shape: vec![*input_dim, *output_dim],
                trainable: true,
                initial: None,
            }]
        }
        Op::Rnn(a) | Op::RepeatRnn { rnn: a, .. } => rnn_weight_specs(prefix, a),
        Op::Bidirectional { forward, backward, .. } => {
            let mut v = rnn_weight_specs(&format!("{prefix}/forward"), forward);
            v.extend(rnn_weight_specs(&format!("{prefix}/backward"), backward));
            v
        }
        Op::Layer(l) => l
            .weights()
            .into_iter()
            .map(|(var, shape)| WeightSpec {
                key: key(var.name),
                shape,
                trainable: var.trainable,
                initial: var.initial,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The kernel, recurrent kernel and bias of one recurrent layer under `prefix`.
pub fn rnn_weight_specs(prefix: &str, a: &crate::RnnAttrs) -> Vec<WeightSpec> {
    let g = a.cell.gates() * a.units;
    let mut v = vec![
        WeightSpec {
            key: format!("{prefix}/kernel"),
            shape: vec![a.input_dim, g],
            trainable: true,
            initial: None,
        },
        WeightSpec {
            key: format!("{prefix}/recurrent_kernel"),
            shape: vec![a.units, g],
            trainable: true,
            initial: None,
        },
    ];
    if a.use_bias {
        let shape = match a.cell {
            CellKind::Gru { reset_after: true } => vec![2, g],
            _ => vec![g],
        };
        v.push(WeightSpec { key: format!("{prefix}/bias"), shape, trainable: true, initial: None });
    }
    v
}

/// A node written as constant data (generated code describes its program this way).
#[derive(Debug, Clone)]
pub struct NodeDesc {
    /// The operation.
    pub op: Op,
    /// The layer name.
    pub layer: &'static str,
    /// The model path.
    pub scope: &'static str,
    /// The weight key prefix.
    pub weights: Option<&'static str>,
    /// `(source node, source port)` per input port, sources earlier in the list.
    pub inputs: &'static [(usize, usize)],
    /// The type of each output.
    pub outputs: &'static [(&'static [crate::Dim], crate::DType)],
}

impl Program {
    /// Rebuilds a program from constant node descriptions (node `i` of `nodes` becomes
    /// `NodeIndex::new(i)`); `inputs` names the input nodes, `outputs` the output ports.
    pub fn from_descs(
        name: &str,
        nodes: &[NodeDesc],
        inputs: &[(&str, usize)],
        outputs: &[(usize, usize)],
        symbols: &[&str],
        batch: Option<usize>,
    ) -> Program {
        let mut graph = StableDiGraph::new();
        let mut types: HashMap<NodeIndex, Vec<TensorType>> = HashMap::new();
        let mut ids = Vec::with_capacity(nodes.len());
        for d in nodes {
            let n = graph.add_node(Node {
                op: d.op.clone(),
                layer: d.layer.into(),
                scope: d.scope.into(),
                weights: d.weights.map(String::from),
            });
            for (port, (src, sport)) in d.inputs.iter().enumerate() {
                graph.add_edge(ids[*src], n, Edge { src_port: *sport, dst_port: port });
            }
            types.insert(
                n,
                d.outputs
                    .iter()
                    .map(|(dims, dtype)| TensorType { dims: dims.to_vec(), dtype: *dtype })
                    .collect(),
            );
            ids.push(n);
        }
        let inputs = inputs
            .iter()
            .map(|(iname, i)| InputSpec {
                name: (*iname).into(),
                ty: types[&ids[*i]][0].clone(),
                node: ids[*i],
            })
            .collect();
        Program {
            name: name.into(),
            docs: Vec::new(),
            graph,
            inputs,
            outputs: outputs.iter().map(|(n, p)| Port { node: ids[*n], port: *p }).collect(),
            types,
            symbols: symbols.iter().map(|s| (*s).into()).collect(),
            batch,
            spans: HashMap::new(),
        }
    }
}
