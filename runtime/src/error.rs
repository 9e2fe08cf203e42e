//! Run-time errors: wrong inputs, missing or mis-shaped weights, bad files.

/// Everything that can go wrong when loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The number of inputs differs from the model's.
    #[error("model `{model}` takes {expected} input(s), {found} given")]
    InputCount {
        /// Model name.
        model: String,
        /// Declared inputs.
        expected: usize,
        /// Given inputs.
        found: usize,
    },
    /// An input has the wrong rank, dims or dtype.
    #[error("input `{input}` of model `{model}`: expected {expected}, got {found}")]
    InputShape {
        /// Model name.
        model: String,
        /// Input name.
        input: String,
        /// What the model declares (with batch).
        expected: String,
        /// What was given.
        found: String,
    },
    /// An array given for an output (`predict_into`) has another shape than the output.
    #[error("output {index} of model `{model}` has shape {expected:?}, the array given for it {found:?}")]
    OutputShape {
        /// Model name.
        model: String,
        /// Which output (from 0, in the declared order).
        index: usize,
        /// The output's shape (with batch).
        expected: Vec<usize>,
        /// The given array's shape.
        found: Vec<usize>,
    },
    /// A weight is missing from the store.
    #[error("missing weight `{key}` (shape {shape:?}) for layer `{layer}`")]
    MissingWeight {
        /// The weight key.
        key: String,
        /// Expected shape.
        shape: Vec<usize>,
        /// The layer.
        layer: String,
    },
    /// A weight has the wrong shape.
    #[error("weight `{key}` has shape {found:?}, layer `{layer}` needs {expected:?}")]
    WeightShape {
        /// The weight key.
        key: String,
        /// Needed shape.
        expected: Vec<usize>,
        /// Stored shape.
        found: Vec<usize>,
        /// The layer.
        layer: String,
    },
    /// The store has weights the model does not use.
    #[error("weights not used by model `{model}`: {keys:?}")]
    ExtraWeights {
        /// Model name.
        model: String,
        /// The unused keys.
        keys: Vec<String>,
    },
    /// Memory for a model's weights or buffers cannot be allocated.
    #[error("{what} needs {} of memory, which cannot be allocated", human_bytes(*.bytes))]
    OutOfMemory {
        /// What needed it ("the weights of layer `lstm`").
        what: String,
        /// How many bytes.
        bytes: usize,
    },
    /// A value inside the data is invalid (a token id out of range, NaN, ...).
    #[error("{0}")]
    InvalidData(String),
    /// A run-time size does not fit what the model needs.
    #[error("{0}")]
    Shape(String),
    /// The model asks for something this version cannot do yet (never a shape error).
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// The weights were saved for another architecture (same keys and shapes, different
    /// model: another activation, direction or wiring).
    #[error(
        "these weights were made for model `{made_for}` with another architecture than `{model}`'s; load them anyway with `untag` (`seqc run --any-architecture`)"
    )]
    OtherArchitecture {
        /// The model loading them.
        model: String,
        /// The model they were saved for.
        made_for: String,
    },
    /// A program breaks the IR's invariants (a bug of whatever built it).
    #[error("invalid program")]
    Program(#[from] seqmodel_ir::InvalidProgram),
    /// A weight file could not be read or written: what went wrong (naming the file), and
    /// the underlying error when there is one.
    #[error("weight file: {what}")]
    WeightFile {
        /// What went wrong, with the file's path where it is known.
        what: String,
        /// The I/O, safetensors or Keras error behind it.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl RuntimeError {
    /// The error for weights that do not fit `model`'s weight table.
    pub(crate) fn from_mismatch(model: &str, m: seqmodel_ir::WeightMismatch) -> Self {
        use seqmodel_ir::WeightMismatch as M;
        match m {
            M::Missing { key, shape, layer } => RuntimeError::MissingWeight { key, shape, layer },
            M::Shape { key, expected, found, layer } => {
                RuntimeError::WeightShape { key, expected, found, layer }
            }
            M::Extra { keys } => RuntimeError::ExtraWeights { model: model.to_string(), keys },
        }
    }

    /// This error as met while running layer `layer`: running out of memory names the layer
    /// (other errors already say where they are).
    pub(crate) fn in_layer(self, layer: &str) -> Self {
        match self {
            RuntimeError::OutOfMemory { what, bytes } => {
                RuntimeError::OutOfMemory { what: format!("layer `{layer}`: {what}"), bytes }
            }
            e => e,
        }
    }

    /// A weight file error without an underlying cause.
    pub fn weight_file(what: impl Into<String>) -> Self {
        RuntimeError::WeightFile { what: what.into(), source: None }
    }

    /// A weight file error caused by `source`.
    pub fn weight_file_from(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        RuntimeError::WeightFile { what: what.into(), source: Some(Box::new(source)) }
    }
}

/// Result alias of the runtime.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// `6.4 GB (6400000000 bytes)`.
fn human_bytes(b: usize) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GB ({b} bytes)", b as f64 / 1e9),
        b if b >= 1 << 20 => format!("{:.1} MB ({b} bytes)", b as f64 / 1e6),
        b => format!("{b} bytes"),
    }
}
