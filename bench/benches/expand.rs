//! What a model costs at build time (`cargo bench -p seqmodel-bench --bench expand`): the
//! `seqmodel!` macro's expansion (parse, check, generate) and the build script's output
//! (the same, formatted with prettyplease), on each benchmark model.

use criterion::{Criterion, criterion_group, criterion_main};
use seqmodel_bench::{Config, cases};

fn expansion(c: &mut Criterion) {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = Vec::new();
    for config in Config::ALL {
        let source = cases::source(config);
        if seen.contains(&source) {
            continue; // serve-streams runs gen-stateful's model
        }
        seen.push(source);
        let mut group = c.benchmark_group(format!("expand/{}", config.name()));
        group.sample_size(20);
        // The macro's input: the model text inline, as `seqmodel! { ... }` receives it.
        let tokens: proc_macro2::TokenStream = source.parse().expect("a .seq file lexes as Rust tokens");
        group.bench_function("macro", |b| {
            b.iter(|| seqmodel_compiler::macro_support::expand(tokens.clone(), manifest))
        });
        group.bench_function("build.rs (formatted)", |b| {
            b.iter(|| {
                let compiled = seqmodel_compiler::compile(source).expect("benchmark models check");
                seqmodel_compiler::codegen::render(&compiled)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, expansion);
criterion_main!(benches);
