//! The benchmark configs under criterion (`cargo bench -p seqmodel-bench`): generated code
//! and interpreter predict, and one training step, at one thread.

use criterion::{Criterion, criterion_group, criterion_main};
use seqmodel_bench::{Config, Implementation, Mode, cases};

fn configs(c: &mut Criterion) {
    seqmodel::set_num_threads(1);
    for config in Config::ALL {
        let mut group = c.benchmark_group(config.name());
        group.sample_size(10);
        for mode in [Mode::Predict, Mode::Train] {
            for imp in [Implementation::Generated, Implementation::Interpreter] {
                let Some(mut call) = cases::build(config, mode, imp) else { continue };
                group.bench_function(format!("{}/{}", mode.name(), imp.peer()), |b| b.iter(&mut call));
            }
        }
        group.finish();
    }
}

criterion_group!(benches, configs);
criterion_main!(benches);
