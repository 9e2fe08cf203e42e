//! Rules of LayerNormalization and BatchNormalization (over the last axis).

use seqmodel_grammar::Span;
use seqmodel_ir::{BatchNormAttrs, LayerNormAttrs};

use super::catalog::{ArgKind::*, LayerKind, opt};
use super::described::{Rule, conflict, float_features};
use super::{Args, LayerClass};
use crate::check::{Elab, ITy, Tensor};
use crate::diagnostic::Diagnostic;

/// Only the last axis is normalised: `axis=-1` (or `[-1]`, as Keras writes it).
fn last_axis_only(class: &LayerClass, args: &Args, span: Span) -> Result<(), Diagnostic> {
    match args.ints("axis").as_deref() {
        None | Some([-1]) => Ok(()),
        Some(other) => Err(conflict(
            args,
            "axis",
            span,
            format!(
                "`{}` over axis {other:?} is not supported; seqmodel normalises the last axis (axis=-1)",
                class.name
            ),
            "only axis=-1",
        )),
    }
}

/// A switch seqmodel does not implement must be off.
fn off(class: &LayerClass, args: &Args, name: &str, span: Span) -> Result<(), Diagnostic> {
    if args.bool(name, false) {
        return Err(conflict(
            args,
            name,
            span,
            format!("`{}` with `{name}=true` is not supported", class.name),
            "not supported",
        ));
    }
    Ok(())
}

impl Rule for LayerNormAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "LayerNormalization",
        kind: LayerKind::Described,
        snake: "layer_normalization",
        args: &[
            opt("axis", OptInts),
            opt("epsilon", NonNegative),
            opt("center", Bool),
            opt("scale", Bool),
            opt("rms_scaling", Bool),
            opt("beta_initializer", Ignored),
            opt("gamma_initializer", Ignored),
            opt("beta_regularizer", Ignored),
            opt("gamma_regularizer", Ignored),
            opt("beta_constraint", Ignored),
            opt("gamma_constraint", Ignored),
            opt("name", Ignored),
        ],
        positional: 2,
    }];

    fn configure(class: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        last_axis_only(class, args, span)?;
        off(class, args, "rms_scaling", span)?;
        Ok(LayerNormAttrs {
            features: 0,
            epsilon: args.float("epsilon", 1e-3) as f32,
            center: args.bool("center", true),
            scale: args.bool("scale", true),
        })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        self.features = float_features(cx, t, "LayerNormalization", span)?;
        Some(t.ty.clone())
    }
}

impl Rule for BatchNormAttrs {
    const CLASSES: &'static [LayerClass] = &[LayerClass {
        name: "BatchNormalization",
        kind: LayerKind::Described,
        snake: "batch_normalization",
        args: &[
            opt("axis", OptInts),
            opt("momentum", Fraction),
            opt("epsilon", NonNegative),
            opt("center", Bool),
            opt("scale", Bool),
            opt("synchronized", Ignored),
            opt("renorm", Bool),
            opt("renorm_clipping", Ignored),
            opt("renorm_momentum", Ignored),
            opt("beta_initializer", Ignored),
            opt("gamma_initializer", Ignored),
            opt("moving_mean_initializer", Ignored),
            opt("moving_variance_initializer", Ignored),
            opt("beta_regularizer", Ignored),
            opt("gamma_regularizer", Ignored),
            opt("beta_constraint", Ignored),
            opt("gamma_constraint", Ignored),
            opt("name", Ignored),
        ],
        positional: 3,
    }];

    fn configure(class: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        last_axis_only(class, args, span)?;
        off(class, args, "renorm", span)?;
        Ok(BatchNormAttrs {
            features: 0,
            epsilon: args.float("epsilon", 1e-3) as f32,
            momentum: args.float("momentum", 0.99) as f32,
            center: args.bool("center", true),
            scale: args.bool("scale", true),
        })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        self.features = float_features(cx, t, "BatchNormalization", span)?;
        Some(t.ty.clone())
    }
}
