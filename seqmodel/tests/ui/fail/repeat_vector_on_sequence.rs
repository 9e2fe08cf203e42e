seqmodel::seqmodel! {
    model M(x: [T, 8]) -> [5, 4] {
        x -> LSTM(6, return_sequences=true) -> RepeatVector(5) -> LSTM(4, return_sequences=true)
    }
}
fn main() {}
