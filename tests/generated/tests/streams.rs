//! Many streams of one stateful model (`streams`, `step_streams`): each stream of a batch
//! steps exactly as its own copy of the model would (`run_step` at batch 1, the path the
//! Keras conformance cases check), streams come and go without disturbing the others, and
//! one model is shared by threads.

use ndarray::Array2;
use seqmodel_generated_tests::ex_stateful::Generator;
use seqmodel_generated_tests::one_step::OneStep;

/// Stream `s`'s input at step `t`: different for every stream and step.
fn input(s: usize, t: usize) -> Array2<f32> {
    Array2::from_shape_fn((1, 8), |(_, f)| ((s * 31 + t * 8 + f) as f32 * 0.37).sin())
}

/// Rows `s` of `inputs(streams, t)` are `input(s, t)`.
fn batch(streams: &[usize], t: usize) -> Array2<f32> {
    let rows: Vec<Array2<f32>> = streams.iter().map(|&s| input(s, t)).collect();
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    ndarray::concatenate(ndarray::Axis(0), &views).unwrap()
}

fn max_diff(a: ndarray::ArrayView2<'_, f32>, b: ndarray::ArrayView2<'_, f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// One model per stream, stepped one at a time: the reference.
struct Separate(Vec<Generator>);

impl Separate {
    fn new(model: &Generator, n: usize) -> Self {
        Separate((0..n).map(|_| model.clone()).collect())
    }

    fn step(&mut self, s: usize, t: usize) -> Array2<f32> {
        self.0[s].step(&input(s, t)).unwrap()
    }
}

#[test]
fn every_stream_steps_as_its_own_model_would() {
    let model = Generator::random(3);
    let n = 5; // not the declared batch size (1): streams are any number
    let mut streams = model.streams(n);
    let mut separate = Separate::new(&model, n);
    let ids: Vec<usize> = (0..n).collect();
    for t in 0..6 {
        let y = model.step_streams(&mut streams, batch(&ids, t).view()).unwrap().to_owned();
        assert_eq!(y.shape(), &[n, 8]);
        for s in 0..n {
            let want = separate.step(s, t);
            let got = y.slice(ndarray::s![s..s + 1, ..]);
            let d = max_diff(got, want.view());
            assert!(d < 1e-5, "stream {s}, step {t}: {d}");
        }
    }
}

/// Steps every row of `streams` once (row `r` is reference stream `rows[r]`, each at its own
/// step count) and checks each row against its reference.
fn step_all(
    model: &Generator,
    streams: &mut seqmodel::Streams,
    rows: &[usize],
    refs: &mut Separate,
    clock: &mut [usize],
) {
    let each: Vec<Array2<f32>> = rows.iter().map(|&s| input(s, clock[s])).collect();
    let x =
        ndarray::concatenate(ndarray::Axis(0), &each.iter().map(|a| a.view()).collect::<Vec<_>>()).unwrap();
    let y = model.step_streams(streams, x.view()).unwrap().to_owned();
    for (r, &s) in rows.iter().enumerate() {
        let want = refs.step(s, clock[s]);
        clock[s] += 1;
        let d = max_diff(y.slice(ndarray::s![r..r + 1, ..]), want.view());
        assert!(d < 1e-5, "row {r} (stream {s}): {d}");
    }
}

#[test]
fn streams_are_reset_added_and_removed_without_disturbing_the_others() {
    let model = Generator::random(4);
    let mut streams = model.streams(3);
    let mut refs = Separate::new(&model, 5);
    let mut rows = vec![0, 1, 2];
    let mut clock = [0usize; 5];
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    // Stream 1 starts over: so does its reference.
    streams.reset(1).unwrap();
    refs.0[1].reset_states();
    clock[1] = 0;
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    // A new stream joins, from zeros.
    streams.resize(4);
    rows.push(3);
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    // Stream 0 leaves; the last row takes its place.
    streams.swap_remove(0).unwrap();
    rows.swap_remove(0);
    assert_eq!(streams.len(), 3);
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    // Every stream starts over.
    streams.reset_all();
    for &s in &rows {
        refs.0[s].reset_states();
        clock[s] = 0;
    }
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
}

#[test]
fn one_model_is_shared_by_threads_each_with_its_own_streams() {
    fn shared<T: Send + Sync>(_: &T) {}
    let model = Generator::random(5);
    shared(&model);
    let run = |first: usize| {
        let ids: Vec<usize> = (first..first + 4).collect();
        let mut streams = model.streams(ids.len());
        (0..5).map(|t| model.step_streams(&mut streams, batch(&ids, t).view()).unwrap().to_owned()).last()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run(0));
        let b = s.spawn(|| run(10));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_eq!(a, run(0).unwrap());
    assert_eq!(b, run(10).unwrap());
}

#[test]
fn wrong_streams_and_inputs_are_errors_that_say_so() {
    let model = Generator::random(6);
    let mut streams = model.streams(2);
    let three = batch(&[0, 1, 2], 0);
    let e = model.step_streams(&mut streams, three.view()).unwrap_err().to_string();
    assert!(e.contains("one row per stream (2 streams)") && e.contains("3 rows"), "{e}");
    // A sequence or a scalar where a step goes does not compile (the step is `[rows,
    // features]`, rank-typed); a step of the wrong width is an error.
    let narrow = Array2::<f32>::zeros((2, 3));
    let e = model.step_streams(&mut streams, narrow.view()).unwrap_err().to_string();
    assert!(e.contains("[2, 1, 3]") || e.contains("[2, 3]"), "{e}");
    let e = streams.reset(2).unwrap_err().to_string();
    assert!(e.contains("no stream 2") && e.contains("2 streams"), "{e}");
    assert!(streams.swap_remove(5).is_err());
    let mut others = OneStep::random(1).streams(2);
    let e = model.step_streams(&mut others, batch(&[0, 1], 0).view()).unwrap_err().to_string();
    assert!(e.contains("belong to `OneStep`, not to `Generator`"), "{e}");
    // No streams: a batch of no rows, refused like any other.
    let mut none = model.streams(0);
    assert!(none.is_empty());
    let e = model.step_streams(&mut none, &Array2::<f32>::zeros((0, 8))).unwrap_err();
    assert!(e.to_string().contains("no rows"), "{e}");
}

/// Enough streams of `Generator` that a step splits across two threads (the split needs
/// streams × weights ≥ 2²¹), and not a multiple of two: the shares differ by one stream.
const MANY: usize = 3_901;

#[test]
fn streams_split_across_threads_step_as_their_own_models_would() {
    let model = Generator::random(7);
    let mut streams = model.streams(MANY);
    let mut refs = Separate::new(&model, MANY + 1);
    let mut rows: Vec<usize> = (0..MANY).collect();
    let mut clock = vec![0usize; MANY + 1];
    seqmodel::set_num_threads(2);
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    assert_eq!(streams.shares(), 2, "{MANY} streams split at two threads");
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    // Reset, added and removed while split: the states come together and split again.
    streams.reset(MANY - 1).unwrap();
    refs.0[MANY - 1].reset_states();
    clock[MANY - 1] = 0;
    streams.resize(MANY + 1);
    rows.push(MANY);
    streams.swap_remove(3).unwrap();
    rows.swap_remove(3);
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    assert_eq!(streams.shares(), 2);
    // Back on one thread, the same states as one batch, then split again.
    seqmodel::set_num_threads(1);
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    assert_eq!(streams.shares(), 1);
    seqmodel::set_num_threads(2);
    step_all(&model, &mut streams, &rows, &mut refs, &mut clock);
    assert_eq!(streams.shares(), 2);
    seqmodel::set_num_threads(0);
}
