//! `seqmodel-bench`: times the DESIGN.md configs and prints one line per
//! (config, mode, implementation, threads), as JSON in `peers.py`'s schema with `--json`.
//!
//! ```text
//! cargo run --release -p seqmodel-bench -- [--threads 1,2] [--configs a,b] [--json]
//! ```

use std::time::Duration;

use clap::Parser;
use seqmodel_bench::{Budget, Config, Implementation, Mode, cases, peak, record_json, time_it};

/// Times seqmodel on the benchmark configs of DESIGN.md.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Thread counts to measure, comma-separated (default: 1 and every core).
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Configs, comma-separated (default: all of them).
    #[arg(long, value_delimiter = ',')]
    configs: Vec<String>,
    /// Modes, comma-separated: predict, train (default: both).
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Skip the interpreter.
    #[arg(long)]
    generated_only: bool,
    /// One JSON object per line in `peers.py`'s schema (and the peak as its own object).
    #[arg(long)]
    json: bool,
    /// A short budget (at least 3 runs and 0.3 s per case) for a quick look.
    #[arg(long)]
    quick: bool,
    /// Skip the peak measurement (for profiling the cases alone).
    #[arg(long)]
    no_peak: bool,
}

fn main() {
    let args = Args::parse();
    let configs: Vec<Config> = if args.configs.is_empty() {
        Config::ALL.to_vec()
    } else {
        args.configs
            .iter()
            .map(|n| {
                Config::from_name(n).unwrap_or_else(|| {
                    let names: Vec<&str> = Config::ALL.iter().map(|c| c.name()).collect();
                    eprintln!("error: unknown config `{n}`; the configs are {}", names.join(", "));
                    std::process::exit(2)
                })
            })
            .collect()
    };
    let modes: Vec<Mode> = if args.modes.is_empty() {
        vec![Mode::Predict, Mode::Train]
    } else {
        args.modes
            .iter()
            .map(|m| match m.as_str() {
                "predict" => Mode::Predict,
                "train" => Mode::Train,
                other => {
                    eprintln!("error: unknown mode `{other}`; the modes are predict, train");
                    std::process::exit(2)
                }
            })
            .collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = if args.threads.is_empty() { vec![1, cores] } else { args.threads.clone() };
    threads.dedup();
    let budget = if args.quick {
        Budget { min_runs: 3, min_time: Duration::from_millis(300), max_runs: 50 }
    } else {
        Budget::default()
    };
    let peak = if args.no_peak { f64::NAN } else { peak::single_core_gflops() };
    // gen-stateful's floor: each step reads every weight once and does its FLOPs.
    let generation = Config::GenStateful;
    let floor = (!args.no_peak && configs.contains(&generation)).then(|| {
        let l2 = peak::l2_read_gbs();
        let bytes = seqmodel_bench::models::GenStateful::PARAMS * 4;
        let steps = generation.shape().1;
        (peak::step_floor_ms(steps, bytes, generation.gflop() / steps as f64, l2, peak), l2, bytes)
    });
    if args.json {
        println!(
            "{}",
            serde_json::json!({"peak": "fma chains, one core", "threads": 1, "gflops": (peak * 10.0).round() / 10.0})
        );
        if let Some((ms, l2, bytes)) = floor {
            println!(
                "{}",
                serde_json::json!({"floor": generation.name(), "threads": 1, "ms": ms, "l2_read_gbs": (l2 * 10.0).round() / 10.0, "weight_bytes_per_step": bytes})
            );
        }
    } else {
        println!("single-core peak (FMA chains): {peak:.1} GFLOP/s");
        if let Some((ms, l2, bytes)) = floor {
            println!(
                "{} floor at 1 thread: {ms:.3} ms ({bytes} weight bytes per step over the L2 read bandwidth, {l2:.1} GB/s, or the FLOPs over the peak, whichever is larger)",
                generation.name()
            );
        }
        println!(
            "{:<13} {:<8} {:<16} {:>7} {:>11} {:>10} {:>10} {:>5} {:>8} {:>7}",
            "config",
            "mode",
            "implementation",
            "threads",
            "median ms",
            "min ms",
            "max ms",
            "runs",
            "GFLOP/s",
            "% peak"
        );
    }
    let imps: &[Implementation] = if args.generated_only {
        &[Implementation::Generated, Implementation::NoStd]
    } else {
        &[Implementation::Generated, Implementation::NoStd, Implementation::Interpreter]
    };
    for &n in &threads {
        seqmodel::set_num_threads(n);
        for &c in &configs {
            for &mode in &modes {
                for &imp in imps {
                    let Some(mut call) = cases::build(c, mode, imp) else { continue };
                    let s = time_it(budget, &mut call);
                    if args.json {
                        println!("{}", record_json(c, mode, imp.peer(), n, &s));
                    } else {
                        let gflop = c.gflop() * if mode == Mode::Train { 3.0 } else { 1.0 };
                        let rate = gflop / (s.median_ms / 1e3);
                        println!(
                            "{:<13} {:<8} {:<16} {:>7} {:>11.3} {:>10.3} {:>10.3} {:>5} {:>8.1} {:>6.1}%",
                            c.name(),
                            mode.name(),
                            imp.peer(),
                            n,
                            s.median_ms,
                            s.min_ms,
                            s.max_ms,
                            s.runs,
                            rate,
                            100.0 * rate / (peak * n as f64)
                        );
                        if let Some((floor_ms, ..)) =
                            floor.filter(|_| c == generation && n == 1 && imp != Implementation::Interpreter)
                        {
                            println!(
                                "{:<13} {:<8} {:<16} {:>7} {:>11.3}   ({:.2}x the floor)",
                                "",
                                "",
                                "floor",
                                1,
                                floor_ms,
                                s.median_ms / floor_ms
                            );
                        }
                    }
                }
            }
        }
    }
}
