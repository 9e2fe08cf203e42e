//! Attention: `Attention` (Luong, dot or concat scores), `AdditiveAttention` (Bahdanau)
//! and `MultiHeadAttention`. Input 0: the query `[Tq, D]`; input 1: the value `[Tv, Dv]`;
//! input 2 (optional): the key `[Tv, Dk]` (the value when absent).

use super::literal::{literal_struct, literal_unit_enum};
use super::{LayerAttrs, WeightVar};

/// How `Attention` scores a query against a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScoreMode {
    /// `q · k` (Luong).
    Dot,
    /// `c · Σ tanh(q + k)` with a learned scalar `c`.
    Concat,
    /// `Σ s ⊙ tanh(q + k)` (`AdditiveAttention`, Bahdanau), with a learned vector `s`.
    Additive,
}
literal_unit_enum!(ScoreMode);

/// `Attention` / `AdditiveAttention`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionAttrs {
    /// How scores are computed (`Additive` for `AdditiveAttention`).
    pub score_mode: ScoreMode,
    /// Whether the scores are scaled by a learned weight.
    pub use_scale: bool,
    /// Query step `i` attends only to value steps `<= i`.
    pub use_causal_mask: bool,
    /// Dropout on the attention weights (training only).
    pub dropout: f32,
    /// Size of the query's and key's last axis (known once the layer sees its inputs).
    pub dim: usize,
    /// A second output: the attention weights `[Tq, Tv]` (Keras's call option
    /// `return_attention_scores`).
    pub return_scores: bool,
}
literal_struct!(AttentionAttrs { score_mode, use_scale, use_causal_mask, dropout, dim, return_scores });

impl LayerAttrs for AttentionAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] = &[
        (
            "Attention",
            &[
                WeightVar::when("scale", "use_scale"),
                WeightVar::when("concat_score_weight", "score_mode=concat"),
            ],
        ),
        ("AdditiveAttention", &[WeightVar::when("scale", "use_scale")]),
    ];

    fn class_name(&self) -> &'static str {
        match self.score_mode {
            ScoreMode::Additive => "AdditiveAttention",
            _ => "Attention",
        }
    }

    fn weight_shape(&self, var: &WeightVar) -> Option<Vec<usize>> {
        match (var.name, self.score_mode) {
            ("scale", ScoreMode::Additive) => self.use_scale.then(|| vec![self.dim]),
            ("scale", _) => self.use_scale.then(Vec::new),
            (_, ScoreMode::Concat) => Some(Vec::new()),
            _ => None,
        }
    }
}

/// `MultiHeadAttention(num_heads, key_dim, ...)`: the query, key and value projected per
/// head, scaled dot-product attention in each head, the heads projected back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MhaAttrs {
    /// Heads.
    pub num_heads: usize,
    /// Size of each head's query and key.
    pub key_dim: usize,
    /// Size of each head's value.
    pub value_dim: usize,
    /// Whether the projections have biases.
    pub use_bias: bool,
    /// Size of the output's last axis (`output_shape`, else the query's).
    pub output_dim: usize,
    /// Query step `i` attends only to value steps `<= i`.
    pub use_causal_mask: bool,
    /// Dropout on the attention weights (training only).
    pub dropout: f32,
    /// Features of the query, the value and the key (known once the layer sees them).
    pub query_features: usize,
    /// Features of the value.
    pub value_features: usize,
    /// Features of the key.
    pub key_features: usize,
    /// A second output: each head's attention weights `[num_heads, Tq, Tv]` (Keras's call
    /// option `return_attention_scores`).
    pub return_scores: bool,
}
literal_struct!(MhaAttrs {
    num_heads,
    key_dim,
    value_dim,
    use_bias,
    output_dim,
    use_causal_mask,
    dropout,
    query_features,
    value_features,
    key_features,
    return_scores
});

impl LayerAttrs for MhaAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] = &[(
        "MultiHeadAttention",
        &[
            WeightVar::always("query_dense/kernel"),
            WeightVar::when("query_dense/bias", "use_bias"),
            WeightVar::always("key_dense/kernel"),
            WeightVar::when("key_dense/bias", "use_bias"),
            WeightVar::always("value_dense/kernel"),
            WeightVar::when("value_dense/bias", "use_bias"),
            WeightVar::always("output_dense/kernel"),
            WeightVar::when("output_dense/bias", "use_bias"),
        ],
    )];

    fn class_name(&self) -> &'static str {
        "MultiHeadAttention"
    }

    fn weight_shape(&self, var: &WeightVar) -> Option<Vec<usize>> {
        let (h, k, v) = (self.num_heads, self.key_dim, self.value_dim);
        let shape = match var.name {
            "query_dense/kernel" => vec![self.query_features, h, k],
            "key_dense/kernel" => vec![self.key_features, h, k],
            "value_dense/kernel" => vec![self.value_features, h, v],
            "output_dense/kernel" => vec![h, v, self.output_dim],
            "query_dense/bias" | "key_dense/bias" => vec![h, k],
            "value_dense/bias" => vec![h, v],
            _ => vec![self.output_dim],
        };
        (var.when.is_none() || self.use_bias).then_some(shape)
    }
}
