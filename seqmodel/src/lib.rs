//! seqmodel: write recurrent models in `.seq`, check every shape while `cargo build` runs,
//! and run or train them with Keras's numbers.
//!
//! ```
//! seqmodel::seqmodel! {
//!     /// A many-to-one LSTM.
//!     model Tiny(x: [T, 3]) -> [1] {
//!         x -> LSTM(4) -> Dense(1)
//!     }
//! }
//!
//! let mut m = Tiny::random(7);
//! let y = m.predict(seqmodel::ndarray::ArrayD::zeros(seqmodel::ndarray::IxDyn(&[2, 5, 3]))).unwrap();
//! assert_eq!(y.shape(), &[2, 1]);
//! assert_eq!(Tiny::PARAMS, 4 * (3 * 4 + 4 * 4 + 4) + 4 + 1);
//! ```

pub use ndarray;
pub use seqmodel_macros::seqmodel;
pub use seqmodel_runtime::*;

/// Includes the code that `seqmodel_compiler::build::Builder` generated into `OUT_DIR` for
/// the model file with this stem.
#[macro_export]
macro_rules! include_model {
    ($name:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $name, ".rs"));
    };
}
