seqmodel::seqmodel! {
    model Encoder(x: [T, 2]) -> [16] { x -> LSTM(16) }
    model Decoder(z: [T, 16]) -> [T, 2] { z -> LSTM(2, return_sequences=true) }
    model AE(x: [T, 2]) -> [T, 2] { Decoder(Encoder(x)) }
}
fn main() {}
