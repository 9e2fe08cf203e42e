//! The layers beyond the recurrent core, each described once: its attributes (what changes
//! the math or the shapes), its Keras class names and its weights in Keras's order. The
//! compiler's checking rule, the runtime's forward and backward passes and the Keras
//! importer all work from this description; [`for_each_layer_op!`](crate::for_each_layer_op)
//! lists every layer so that each side's dispatch is generated from one list (a layer
//! missing on one side is a compile error there).

mod act;
mod attention;
mod conv;
mod literal;
mod noise;
mod norm;
mod ops;
mod reshape;

pub use act::*;
pub use attention::*;
pub use conv::*;
pub use literal::RustLiteral;
pub use noise::*;
pub use norm::*;
pub use ops::*;
pub use reshape::*;

/// One weight variable of a layer, as Keras stores it (`vars/N` in Keras's order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightVar {
    /// The variable's name (`kernel`, `gamma`), the last part of its key.
    pub name: &'static str,
    /// The constructor argument that must be true for the variable to exist (`use_bias`,
    /// `center`), or `key=value` for a string argument (`score_mode=concat`), if any.
    pub when: Option<&'static str>,
    /// Whether the optimizer updates it (BatchNormalization's moving statistics are not
    /// trainable: training sets them itself).
    pub trainable: bool,
    /// The value every element starts at, for variables that are not random at
    /// initialisation (a moving variance starts at 1).
    pub initial: Option<f32>,
}

impl WeightVar {
    /// A trainable variable that always exists.
    pub const fn always(name: &'static str) -> Self {
        WeightVar { name, when: None, trainable: true, initial: None }
    }

    /// A trainable variable that exists when the flag `when` is true.
    pub const fn when(name: &'static str, when: &'static str) -> Self {
        WeightVar { name, when: Some(when), trainable: true, initial: None }
    }

    /// A variable the optimizer never touches, starting at `initial`.
    pub const fn state(name: &'static str, initial: f32) -> Self {
        WeightVar { name, when: None, trainable: false, initial: Some(initial) }
    }
}

/// The description every layer's attributes give.
pub trait LayerAttrs {
    /// The Keras classes this attribute type serves, each with its weight variables in
    /// Keras's order.
    const KERAS: &'static [(&'static str, &'static [WeightVar])];

    /// The Keras class of this instance.
    fn class_name(&self) -> &'static str;

    /// The shape of variable `var` of this instance, or `None` when it is absent (its
    /// `when` flag is false).
    fn weight_shape(&self, var: &WeightVar) -> Option<Vec<usize>>;

    /// How many outputs the layer has.
    fn outputs(&self) -> usize {
        1
    }
}

/// The weight variables of a Keras class, in Keras's order, if seqmodel knows the class as a
/// described layer.
pub fn keras_weight_vars(class: &str) -> Option<&'static [WeightVar]> {
    macro_rules! find {
        ($($variant:ident($attrs:ty)),* $(,)?) => {
            $(if let Some((_, v)) = <$attrs as LayerAttrs>::KERAS.iter().find(|(c, _)| *c == class) {
                return Some(v);
            })*
        };
    }
    crate::for_each_layer_op!(find);
    None
}

/// Calls macro `$m` with the list of every described layer, `Variant(AttrsType)`: the one
/// list from which the IR's [`LayerOp`], the compiler's rules and the runtime's dispatch are
/// generated.
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_layer_op {
    ($m:ident) => {
        $m! {
            Conv1D($crate::Conv1dAttrs),
            Pool1D($crate::PoolAttrs),
            GlobalPool1D($crate::GlobalPoolAttrs),
            LayerNorm($crate::LayerNormAttrs),
            BatchNorm($crate::BatchNormAttrs),
            Permute($crate::PermuteAttrs),
            Reshape($crate::ReshapeAttrs),
            Flatten($crate::FlattenAttrs),
            UpSampling1D($crate::UpSamplingAttrs),
            Activation($crate::ActivationLayer),
            PRelu($crate::PreluAttrs),
            Rescaling($crate::RescalingAttrs),
            Noise($crate::NoiseAttrs),
            Attention($crate::AttentionAttrs),
            MultiHeadAttention($crate::MhaAttrs),
            Slice($crate::SliceAttrs),
            Reduce($crate::ReduceAttrs),
            Stack($crate::StackAttrs),
            Compare($crate::CompareAttrs),
            Logical($crate::LogicalAttrs),
            Cast($crate::CastAttrs),
            ExpandDims($crate::ExpandDimsAttrs),
            SetMask($crate::SetMaskAttrs),
        }
    };
}

macro_rules! define_layer_op {
    ($($variant:ident($attrs:ty)),* $(,)?) => {
        /// A described layer (see [`LayerAttrs`]).
        #[derive(Debug, Clone, PartialEq)]
        pub enum LayerOp {
            $(
                #[doc = concat!("`", stringify!($variant), "`.")]
                $variant($attrs),
            )*
        }

        impl LayerOp {
            /// The Keras class of this instance.
            pub fn class_name(&self) -> &'static str {
                match self {
                    $(LayerOp::$variant(a) => a.class_name(),)*
                }
            }

            /// The present weight variables with their shapes, in Keras's order.
            pub fn weights(&self) -> Vec<(WeightVar, Vec<usize>)> {
                fn of<A: LayerAttrs>(a: &A) -> Vec<(WeightVar, Vec<usize>)> {
                    let class = a.class_name();
                    let vars = A::KERAS.iter().find(|(c, _)| *c == class).map_or(&[][..], |(_, v)| *v);
                    vars.iter().filter_map(|v| a.weight_shape(v).map(|s| (*v, s))).collect()
                }
                match self {
                    $(LayerOp::$variant(a) => of(a),)*
                }
            }

            /// How many outputs the layer has.
            pub fn outputs(&self) -> usize {
                match self {
                    $(LayerOp::$variant(a) => a.outputs(),)*
                }
            }
        }

        impl RustLiteral for LayerOp {
            fn rust(&self) -> String {
                match self {
                    $(LayerOp::$variant(a) => {
                        format!("::seqmodel::ir::LayerOp::{}({})", stringify!($variant), a.rust())
                    })*
                }
            }
        }
    };
}

crate::for_each_layer_op!(define_layer_op);
