//! Runs one benchmark case in a loop for a given time, for a profiler to watch
//! (`perf record --call-graph dwarf`): the timing harness, the peak measurement and the
//! other cases stay out of the profile.
//! `cargo run --release -p seqmodel-bench --example profile_case -- gen-stateful predict interp 10`
//! (a fifth argument sets the thread count; one by default).

use std::time::{Duration, Instant};

use seqmodel_bench::{Config, Implementation, Mode, cases};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: profile_case CONFIG predict|train generated|interp [SECONDS [THREADS]]";
    let config = args.first().and_then(|n| Config::from_name(n)).expect(usage);
    let mode = match args.get(1).map(String::as_str) {
        Some("train") => Mode::Train,
        Some("predict") => Mode::Predict,
        _ => panic!("{usage}"),
    };
    let imp = match args.get(2).map(String::as_str) {
        Some("interp") => Implementation::Interpreter,
        Some("generated") => Implementation::Generated,
        Some("no_std") => Implementation::NoStd,
        _ => panic!("{usage}"),
    };
    let seconds: f64 = args.get(3).map_or(Ok(5.0), |s| s.parse()).expect(usage);
    let threads: usize = args.get(4).map_or(Ok(1), |s| s.parse()).expect(usage);
    seqmodel::set_num_threads(threads);
    let mut call = cases::build(config, mode, imp).expect("the interpreter does not train");
    let (start, mut calls) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        call();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() * 1e3 / calls as f64;
    println!("{calls} calls, {per_call:.4} ms per call");
}
