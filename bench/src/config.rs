//! The seven benchmark configs of DESIGN.md, with the FLOP counts `peers.py` uses.

/// One benchmark config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// LSTM(128) on 32 features, many-to-one; batch 1, 100 steps.
    StreamLstm,
    /// The seed autoencoder (8 features); batch 32, 50 steps.
    AeSeed,
    /// The seed language model; batch 16, 32 steps.
    LmGru,
    /// LSTM(256, return_sequences) on 256 features; batch 256, 50 steps.
    BigLstm,
    /// Stateful LSTM(64) → Dense(8), one step per call, output fed back, 200 calls.
    GenStateful,
    /// Conv1D(64, 5, relu) → MaxPooling1D(2) → LSTM(64) → Dense(1) on 16 features; batch
    /// 32, 200 steps.
    ConvLstm,
    /// `GenStateful`'s model serving 256 independent streams: one step of every stream per
    /// call (as one batch, through `step_streams`), output fed back, 200 calls.
    ServeStreams,
}

impl Config {
    /// Every config, in DESIGN.md's order.
    pub const ALL: [Config; 7] = [
        Config::StreamLstm,
        Config::AeSeed,
        Config::LmGru,
        Config::BigLstm,
        Config::GenStateful,
        Config::ConvLstm,
        Config::ServeStreams,
    ];

    /// The name used by DESIGN.md and `peers.py`.
    pub fn name(self) -> &'static str {
        match self {
            Config::StreamLstm => "stream-lstm",
            Config::AeSeed => "ae-seed",
            Config::LmGru => "lm-gru",
            Config::BigLstm => "big-lstm",
            Config::GenStateful => "gen-stateful",
            Config::ConvLstm => "conv-lstm",
            Config::ServeStreams => "serve-streams",
        }
    }

    /// The config with this name.
    pub fn from_name(name: &str) -> Option<Config> {
        Config::ALL.into_iter().find(|c| c.name() == name)
    }

    /// `(batch, steps)`; for `gen-stateful` and `serve-streams`, steps is the number of
    /// one-step calls (and batch the number of streams).
    pub fn shape(self) -> (usize, usize) {
        match self {
            Config::StreamLstm => (1, 100),
            Config::AeSeed => (32, 50),
            Config::LmGru => (16, 32),
            Config::BigLstm => (256, 50),
            Config::GenStateful => (1, 200),
            Config::ConvLstm => (32, 200),
            Config::ServeStreams => (256, 200),
        }
    }

    /// Whether one training step is measured (every config but the generation loops).
    pub fn trains(self) -> bool {
        !self.steps()
    }

    /// Whether a call is a loop of one-step calls with the output fed back.
    pub fn steps(self) -> bool {
        matches!(self, Config::GenStateful | Config::ServeStreams)
    }

    /// Forward GFLOP of one call, counted as `peers.py` counts them (multiply-adds of the
    /// matrix products only).
    pub fn gflop(self) -> f64 {
        let (b, t) = self.shape();
        let lstm = |d: usize, h: usize| 2.0 * (b * t * 4 * h * (d + h)) as f64;
        let gru = |d: usize, h: usize| 2.0 * (b * t * 3 * h * (d + h)) as f64;
        let f = match self {
            Config::StreamLstm => lstm(32, 128),
            Config::AeSeed => lstm(8, 64) + lstm(64, 48) + lstm(48, 32) + lstm(32, 48) + lstm(48, 8),
            Config::LmGru => gru(128, 512) + gru(512, 128) + 2.0 * (b * t * 128 * 10000) as f64,
            Config::BigLstm => lstm(256, 256),
            Config::GenStateful | Config::ServeStreams => lstm(8, 64) + 2.0 * (b * t * 64 * 8) as f64,
            Config::ConvLstm => {
                let lstm_steps = (t - 4) / 2;
                2.0 * (b * (t - 4) * 64 * 16 * 5) as f64
                    + 2.0 * (b * lstm_steps * 4 * 64 * (64 + 64)) as f64
                    + 2.0 * (b * 64) as f64
            }
        };
        f / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_flops_match_hand_counts() {
        for c in Config::ALL {
            assert_eq!(Config::from_name(c.name()), Some(c));
        }
        // 2·B·T·4H·(D+H) for stream-lstm: 2·1·100·512·160.
        assert!((Config::StreamLstm.gflop() - 0.016384).abs() < 1e-12);
        // big-lstm: 2·256·50·1024·512.
        assert!((Config::BigLstm.gflop() - 13.421772800).abs() < 1e-9);
    }
}
