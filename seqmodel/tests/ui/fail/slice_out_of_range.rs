seqmodel::seqmodel! {
    model M(x: [4, 3]) -> [2] {
        h = x -> LSTM(2, return_sequences=true);
        h[7]
    }
}
fn main() {}
