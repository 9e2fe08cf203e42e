seqmodel::seqmodel! {
    model Broken(x: [T, 8]) -> [T, 4] {
        x -> LSTM(4)
    }
}
// The type still exists, so only the model error is reported, not "cannot find type".
fn use_it(_m: Option<Broken>) {}
fn main() { use_it(None); }
