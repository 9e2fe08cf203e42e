seqmodel::seqmodel! {
    model M(x: [T, 8]) -> [T, 4] {
        x -> LSTM(16) -> LSTM(4, return_sequences=true)
    }
}
fn main() {}
