//! The intermediate representation shared by the seqmodel compiler (which builds and checks
//! it) and the runtime (which interprets it): a [`petgraph`] graph of a closed [`Op`] enum,
//! with inferred types and source spans in side tables.

mod dump;
mod layers;
mod ops;
pub mod passes;
mod program;
mod types;
mod weight_table;

pub use layers::*;
pub use ops::{Activation, CellKind, MergeKind, MergeMode, Op, RnnAttrs};
pub use petgraph::stable_graph::NodeIndex;
pub use program::{
    Edge, InputSpec, InvalidProgram, Node, NodeDesc, Port, Program, WeightSpec, node_weight_specs,
    op_weight_specs, rnn_weight_specs,
};
pub use types::{DType, Dim, SymId, TensorType};
pub use weight_table::{
    ARCHITECTURE_METADATA_KEY, MODEL_METADATA_KEY, WeightMismatch, check_weight_table, weight_layer,
};
