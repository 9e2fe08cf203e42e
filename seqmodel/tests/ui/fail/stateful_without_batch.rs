seqmodel::seqmodel! {
    model Gen(x: [T, 8]) -> [T, 8] {
        x -> LSTM(8, stateful=true, return_sequences=true)
    }
}
fn main() {}
