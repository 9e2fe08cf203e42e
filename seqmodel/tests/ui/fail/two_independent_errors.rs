seqmodel::seqmodel! {
    model A(x: [8]) -> [2] { x -> Dense(2, activation="sigmod") }
    model B(x: [T, 4]) -> [2] { x -> GRU(2, reset_afer=false) }
}
fn main() {}
