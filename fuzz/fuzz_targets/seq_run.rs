//! Any text that checks, run: random weights, then a batch of two on inputs of the declared
//! shapes with every dimension known only at run time set from the input bytes (1 to 9), and
//! a training step of one of Keras's losses. Whatever the program, a result or an error,
//! never a panic. Programs whose weights or values would pass a few million floats are
//! skipped (the time and memory of a case, not a bug). The runtime runs on one thread.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seqmodel_runtime::ir::{DType, Dim};
use seqmodel_runtime::train::{Loss, Optimizer, Trainer};
use seqmodel_runtime::{Model, Tensor, WeightStore};

fuzz_target!(|data: &[u8]| {
    // One thread: the helper threads keep their packing buffers for the life of the process,
    // and LeakSanitizer's check between inputs of a long run reported a helper's new buffer
    // as leaked (the same input replayed alone reports nothing). The split paths are tested
    // against one thread by the runtime's unit tests.
    seqmodel_runtime::set_num_threads(1);
    let Some((&size, text)) = data.split_first() else { return };
    let Ok(src) = std::str::from_utf8(text) else { return };
    let Ok(compiled) = seqmodel_compiler::compile(src) else { return };
    let Some(program) = compiled.programs.last().cloned() else { return };
    let params: usize = program.weight_specs().iter().map(|s| s.shape.iter().product::<usize>()).sum();
    if params > 1 << 20 {
        return;
    }
    let t = 1 + (size % 9) as usize;
    let batch = program.batch.unwrap_or(2);
    let mut inputs = Vec::new();
    for input in &program.inputs {
        let mut shape = vec![batch];
        for d in &input.ty.dims {
            shape.push(match d {
                Dim::Fixed(n) => *n,
                Dim::Sym { offset, .. } => (t as i64 + offset).clamp(1, 16) as usize,
            });
        }
        let n: usize = shape.iter().product();
        if n > 1 << 16 {
            return;
        }
        let shape = ndarray::IxDyn(&shape);
        inputs.push(match input.ty.dtype {
            DType::I32 => Tensor::I32(ndarray::ArrayD::from_shape_vec(shape, (0..n).map(|i| (i % 3) as i32).collect()).expect("sized")),
            _ => Tensor::F32(
                ndarray::ArrayD::from_shape_vec(shape, (0..n).map(|i| (i % 5) as f32 / 4.0 - 0.5).collect()).expect("sized"),
            ),
        });
    }
    let Ok(weights) = WeightStore::try_random(&program, 7, 0.5) else { return };
    let Ok(mut model) = Model::new(program.clone(), &weights) else { return };
    let Ok(outputs) = model.predict(&inputs) else { return };
    // A training step on the outputs' own shapes, mean squared error against zeros.
    let targets: Vec<Tensor> = outputs.iter().map(|o| Tensor::F32(o.mapv(|_| 0.0))).collect();
    if let Ok(mut trainer) = Trainer::new(program, weights, Loss::MeanSquaredError, Optimizer::sgd(0.01)) {
        let _ = trainer.train_on_batch(&inputs, &targets);
    }
});
