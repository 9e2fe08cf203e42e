//! One line about each layer type, for hover and completion.

/// What a layer of Keras class `class` does, in one line.
pub fn layer_doc(class: &str) -> &'static str {
    match class {
        "Dense" => "Fully connected layer: `activation(x · kernel + bias)` on the last axis.",
        "Activation" => "Applies an activation function element-wise.",
        "LSTM" => {
            "Long short-term memory recurrent layer; the last step, or every step with `return_sequences=true`."
        }
        "GRU" => "Gated recurrent unit layer (`reset_after=true` as Keras 2.x+ by default).",
        "SimpleRNN" => "Fully connected recurrent layer: `h = activation(x · W + h · U + b)`.",
        "Bidirectional" => {
            "Runs a recurrent layer forward and backward over time and merges the two (`merge_mode`)."
        }
        "RepeatVector" => "Repeats a vector `n` times: `[F]` to `[n, F]`.",
        "TimeDistributed" => "Applies a layer (or a model) to every time step.",
        "Embedding" => "Maps integer token ids to dense vectors; `mask_zero=true` masks id 0.",
        "Masking" => "Masks the time steps whose features all equal `mask_value`.",
        "Cropping1D" => "Removes steps from the start and the end of the time axis.",
        "ZeroPadding1D" => "Adds zero steps at the start and the end of the time axis.",
        "UpSampling1D" => "Repeats each time step `size` times.",
        "Dropout" => {
            "Zeroes a fraction `rate` of the inputs in training (scaled by 1/(1-rate)); identity at inference."
        }
        "Concatenate" => "Joins tensors along an axis (the last by default).",
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" => {
            "Merges tensors of one shape element-wise."
        }
        "Conv1D" => {
            "1-D convolution over time (`padding` valid, same or causal; `strides`, `dilation_rate`, `groups`)."
        }
        "MaxPooling1D" => "Maximum over windows of `pool_size` steps.",
        "AveragePooling1D" => "Average over windows of `pool_size` steps.",
        "GlobalAveragePooling1D" => "Average over all (unmasked) time steps.",
        "GlobalMaxPooling1D" => "Maximum over all time steps.",
        "LayerNormalization" => {
            "Normalises each step's features to zero mean and unit variance, then scales and shifts."
        }
        "BatchNormalization" => {
            "Normalises features with batch statistics in training and moving statistics at inference."
        }
        "Permute" => "Reorders the non-batch axes (`dims`, from 1).",
        "Reshape" => "Reshapes the non-batch axes (`-1` infers one).",
        "Flatten" => "Flattens the non-batch axes into one.",
        "Rescaling" => "Multiplies by `scale` and adds `offset`.",
        "Attention" => "Dot-product (Luong) attention of a query over a value (and key) sequence.",
        "AdditiveAttention" => "Additive (Bahdanau) attention of a query over a value (and key) sequence.",
        "MultiHeadAttention" => "Multi-head scaled dot-product attention with learned projections.",
        "ReLU" | "LeakyReLU" | "ELU" | "PReLU" | "Softmax" => "An activation layer.",
        "GaussianNoise" | "GaussianDropout" | "AlphaDropout" | "SpatialDropout1D" => {
            "Regularisation noise in training; identity at inference."
        }
        _ => "A Keras layer.",
    }
}
