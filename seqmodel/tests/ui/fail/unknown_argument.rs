seqmodel::seqmodel! {
    model M(x: [T, 8]) -> [T, 4] {
        x -> LSTM(4, return_sequence=true)
    }
}
fn main() {}
