seqmodel::seqmodel! {
    model M(a: [4], b: [6]) -> [3] {
        shared = Dense(3);
        s = shared(a);
        t = shared(b);
        Add()([s, t])
    }
}
fn main() {}
