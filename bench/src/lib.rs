//! seqmodel's benchmarks: the six configs of DESIGN.md, run through the generated code and
//! the interpreter, inference and one training step, timed with `peers.py`'s protocol and
//! printed in its JSON schema so the two can be tabulated side by side
//! (`bench/compare.py`). `benches/configs.rs` runs the same cases under criterion.

pub mod cases;
pub mod config;
pub mod peak;
pub mod timing;

/// The benchmark models as generated Rust (from `models/*.seq`, by `build.rs`).
#[allow(missing_docs)]
pub mod models {
    seqmodel::include_model!("stream_lstm");
    seqmodel::include_model!("ae_seed");
    seqmodel::include_model!("lm_gru");
    seqmodel::include_model!("big_lstm");
    seqmodel::include_model!("gen_stateful");
    seqmodel::include_model!("conv_lstm");
}

pub use cases::{Implementation, Mode};
pub use config::Config;
pub use timing::{Budget, Stats, time_it};

/// One measurement as a JSON object with `peers.py`'s keys.
pub fn record_json(c: Config, mode: Mode, peer: &str, threads: usize, s: &Stats) -> String {
    let gflop = c.gflop() * if mode == Mode::Train { 3.0 } else { 1.0 };
    let round = |v: f64, digits: i32| (v * 10f64.powi(digits)).round() / 10f64.powi(digits);
    serde_json::json!({
        "config": c.name(),
        "mode": mode.name(),
        "peer": peer,
        "threads": threads,
        "median_ms": round(s.median_ms, 4),
        "min_ms": round(s.min_ms, 4),
        "max_ms": round(s.max_ms, 4),
        "runs": s.runs,
        "gflop": round(gflop, 6),
    })
    .to_string()
}
