//! Rules of the layers that are identities at inference: GaussianNoise, GaussianDropout,
//! SpatialDropout1D, AlphaDropout, ActivityRegularization.

use seqmodel_grammar::Span;
use seqmodel_ir::{NoiseAttrs, NoiseKind};

use super::catalog::{ArgKind::*, opt, req};
use super::described::{Rule, class1, need_sequence};
use super::{Args, LayerClass, need_float};
use crate::check::{Elab, ITy, Tensor};
use crate::diagnostic::Diagnostic;

impl Rule for NoiseAttrs {
    const CLASSES: &'static [LayerClass] = &[
        class1(
            "GaussianNoise",
            "gaussian_noise",
            &[req("stddev", NonNegative), opt("seed", Ignored), opt("name", Ignored)],
        ),
        class1(
            "GaussianDropout",
            "gaussian_dropout",
            &[req("rate", Rate), opt("seed", Ignored), opt("name", Ignored)],
        ),
        class1(
            "SpatialDropout1D",
            "spatial_dropout1d",
            &[req("rate", Rate), opt("seed", Ignored), opt("name", Ignored)],
        ),
        class1(
            "AlphaDropout",
            "alpha_dropout",
            &[req("rate", Rate), opt("noise_shape", Ignored), opt("seed", Ignored), opt("name", Ignored)],
        ),
        class1(
            "ActivityRegularization",
            "activity_regularization",
            &[opt("l1", NonNegative), opt("l2", NonNegative), opt("name", Ignored)],
        ),
    ];

    fn configure(class: &'static LayerClass, args: &Args, _: Span) -> Result<Self, Diagnostic> {
        let kind = match class.name {
            "GaussianNoise" => NoiseKind::GaussianNoise,
            "GaussianDropout" => NoiseKind::GaussianDropout,
            "SpatialDropout1D" => NoiseKind::SpatialDropout1D,
            "AlphaDropout" => NoiseKind::AlphaDropout,
            _ => NoiseKind::ActivityRegularization,
        };
        let rate = match kind {
            NoiseKind::GaussianNoise => args.float("stddev", 0.0),
            NoiseKind::ActivityRegularization => args.float("l1", 0.0),
            _ => args.float("rate", 0.0),
        };
        Ok(NoiseAttrs { kind, rate: rate as f32, l2: args.float("l2", 0.0) as f32 })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let who = seqmodel_ir::LayerAttrs::class_name(self);
        if !need_float(cx, t, who, span) {
            return None;
        }
        if self.kind == NoiseKind::SpatialDropout1D && !need_sequence(cx, t, who, span) {
            return None;
        }
        Some(t.ty.clone())
    }
}
