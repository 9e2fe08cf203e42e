seqmodel::seqmodel! {
    model M(x: [T, 8]) -> [4] {
        x -> LSTM(4) -> -> Dense(2)
    }
}
fn main() {}
