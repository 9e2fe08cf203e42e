//! The order in which Keras 3 runs the calls of a functional model (`Function.
//! _run_through_graph`): deepest first, and within a depth in the order `map_graph` first
//! met them walking back from the outputs. It matters where a call changes what later calls
//! see: a MultiHeadAttention removes its inputs' masks, so an Attention on the same tensors
//! gets them only if it runs first, whatever the order of the config's layers.

use std::collections::{HashMap, HashSet};

/// A call: a layer's name and which of its calls.
pub(crate) type Call = (String, usize);

/// Each call's position in Keras's run, from the calls' inputs (`parents`: the calls whose
/// outputs each call reads, in the order of its arguments) and the model's output calls in
/// order. Calls that no output depends on are absent (Keras does not run them).
pub(crate) fn run_ranks(parents: &HashMap<Call, Vec<Call>>, outputs: &[Call]) -> HashMap<Call, usize> {
    // `_build_map`: each call after the calls it reads, walking from each output in turn.
    let mut finished: HashSet<Call> = HashSet::new();
    let mut on_stack: HashSet<Call> = HashSet::new();
    let mut decreasing_depth: Vec<Call> = Vec::new();
    for out in outputs {
        // An explicit stack (a deep model would overflow the call stack): each entry a call
        // and how many of its parents have been visited.
        let mut stack: Vec<(Call, usize)> = vec![(out.clone(), 0)];
        on_stack.insert(out.clone());
        while let Some((call, next)) = stack.pop() {
            if finished.contains(&call) {
                continue;
            }
            let ps = parents.get(&call).map(Vec::as_slice).unwrap_or_default();
            match ps.get(next) {
                Some(p) => {
                    stack.push((call, next + 1));
                    if !finished.contains(p) && on_stack.insert(p.clone()) {
                        stack.push((p.clone(), 0));
                    }
                }
                None => {
                    on_stack.remove(&call);
                    finished.insert(call.clone());
                    decreasing_depth.push(call);
                }
            }
        }
    }
    // `map_graph`: depths from the outputs back, each call's entry made when first met.
    let mut depth_order: Vec<Call> = Vec::new();
    let mut depth: HashMap<Call, usize> = HashMap::new();
    let mut layer_depth: HashMap<String, usize> = HashMap::new();
    let mut note = |call: &Call, d: usize, depth: &mut HashMap<Call, usize>| {
        if depth.insert(call.clone(), d).is_none() {
            depth_order.push(call.clone());
        }
    };
    for call in decreasing_depth.iter().rev() {
        let d = depth.get(call).copied().unwrap_or(0);
        let d = d.max(layer_depth.get(&call.0).copied().unwrap_or(0));
        layer_depth.insert(call.0.clone(), d);
        note(call, d, &mut depth);
        for p in parents.get(call).map(Vec::as_slice).unwrap_or_default() {
            let before = depth.get(p).copied().unwrap_or(0);
            note(p, (d + 1).max(before), &mut depth);
        }
    }
    // `_run_through_graph`: the deepest first, each depth in the order its calls were met.
    let mut by_depth: Vec<(usize, usize, &Call)> =
        depth_order.iter().enumerate().map(|(met, c)| (depth[c], met, c)).collect();
    by_depth.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    by_depth.into_iter().enumerate().map(|(rank, (_, _, c))| (c.clone(), rank)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str) -> Call {
        (name.to_string(), 0)
    }

    /// Two calls on one embedding, both outputs of the model: Keras runs the one of the
    /// later output first (met first walking back from the outputs), whatever the order in
    /// which they were made.
    #[test]
    fn same_depth_calls_run_in_the_order_met_from_the_last_output() {
        let parents = HashMap::from([
            (call("emb"), vec![call("x")]),
            (call("att"), vec![call("emb"), call("emb")]),
            (call("mha"), vec![call("emb"), call("emb")]),
        ]);
        let ranks = run_ranks(&parents, &[call("att"), call("mha")]);
        assert!(ranks[&call("x")] < ranks[&call("emb")]);
        assert!(ranks[&call("mha")] < ranks[&call("att")], "{ranks:?}");
    }

    /// A deeper chain runs before a shallower sibling.
    #[test]
    fn deeper_calls_run_first() {
        let parents = HashMap::from([
            (call("a"), vec![call("x")]),
            (call("b"), vec![call("a")]),
            (call("c"), vec![call("x")]),
            (call("out"), vec![call("b"), call("c")]),
        ]);
        let ranks = run_ranks(&parents, &[call("out")]);
        assert!(ranks[&call("a")] < ranks[&call("c")], "{ranks:?}");
        assert!(ranks[&call("c")] < ranks[&call("out")]);
    }
}
