//! How long checking takes as the number of models grows (issue 17: the checker was quadratic
//! in the models; 10^5 small models took 214 s). Prints one line per size for a file of models
//! that all check and one where every model misspells a name (so every model is an error with
//! a "did you mean" search over the file's names).
//!
//! ```text
//! cargo run --release -p seqmodel-compiler --example many_models [-- 100000]
//! ```

use std::time::Instant;

fn file(n: usize, misspelt: bool) -> String {
    let body = if misspelt { "x -> Dense(4) -> Dnse(4)" } else { "x -> Dense(4)" };
    (0..n).map(|i| format!("model M{i}(x: [T, 4]) -> [T, 4] {{\n    {body}\n}}\n")).collect()
}

fn main() {
    let largest: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut n = 1_000.min(largest);
    loop {
        for misspelt in [false, true] {
            let src = file(n, misspelt);
            let start = Instant::now();
            let result = seqmodel_compiler::compile(&src);
            let took = start.elapsed();
            let outcome = match &result {
                Ok(c) => format!("{} programs", c.programs.len()),
                Err(e) => format!("{} errors", e.0.len()),
            };
            println!(
                "{n:>7} models, {:<10} {:>8.3} s  ({outcome})",
                if misspelt { "misspelt" } else { "correct" },
                took.as_secs_f64()
            );
        }
        if n >= largest {
            break;
        }
        n = (n * 10).min(largest);
    }
}
