//! Import errors.

/// Everything that can go wrong when importing a Keras model.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The `.keras` zip is corrupt or lacks a member.
    #[error("not a valid .keras archive: {0}")]
    Archive(String),
    /// The HDF5 data is corrupt or lacks something.
    #[error("HDF5: {0}")]
    Hdf5(String),
    /// The model config is not what Keras writes.
    #[error("model config: {0}")]
    Config(String),
    /// A layer or option that seqmodel does not implement (never silently different math).
    #[error("layer `{layer}`: {what} is not supported")]
    Unsupported {
        /// The Keras layer name.
        layer: String,
        /// What is unsupported.
        what: String,
    },
    /// The generated `.seq` did not compile (a bug in the importer or an unsupported shape).
    #[error("the imported model does not check:\n{0}")]
    Compile(String),
    /// The weights do not fit the model.
    #[error("weights: {0}")]
    Weights(#[from] seqmodel_runtime::RuntimeError),
}

/// Result alias of the importer.
pub type Result<T, E = ImportError> = std::result::Result<T, E>;
