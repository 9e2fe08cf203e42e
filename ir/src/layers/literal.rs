//! Writing IR values as Rust expressions: the code that `seqmodel!` and `seqc build`
//! generate builds its operations from these, so a new layer needs no code generator of its
//! own.

/// A value that can be written as a Rust constant expression naming `::seqmodel::ir`.
pub trait RustLiteral {
    /// The expression.
    fn rust(&self) -> String;
}

macro_rules! int_literal {
    ($($t:ty),*) => {$(
        impl RustLiteral for $t {
            fn rust(&self) -> String {
                format!("{}{}", self, stringify!($t))
            }
        }
    )*};
}
int_literal!(usize, i64, u32);

impl RustLiteral for bool {
    fn rust(&self) -> String {
        self.to_string()
    }
}

impl RustLiteral for f32 {
    /// By its bits: exact, and NaN or infinities stay what they were.
    fn rust(&self) -> String {
        format!("f32::from_bits({:#010x})", self.to_bits())
    }
}

impl<T: RustLiteral> RustLiteral for Option<T> {
    fn rust(&self) -> String {
        match self {
            Some(v) => format!("::core::option::Option::Some({})", v.rust()),
            None => "::core::option::Option::None".into(),
        }
    }
}

impl<T: RustLiteral, const N: usize> RustLiteral for [T; N] {
    fn rust(&self) -> String {
        let items: Vec<String> = self.iter().map(RustLiteral::rust).collect();
        format!("[{}]", items.join(", "))
    }
}

impl RustLiteral for crate::Activation {
    fn rust(&self) -> String {
        format!("::seqmodel::ir::Activation::{self:?}")
    }
}

/// Implements [`RustLiteral`] for a struct from its field list.
macro_rules! literal_struct {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::layers::RustLiteral for $ty {
            fn rust(&self) -> String {
                let fields: Vec<String> = vec![$(format!(
                    "{}: {}",
                    stringify!($field),
                    $crate::layers::RustLiteral::rust(&self.$field)
                )),*];
                format!("::seqmodel::ir::{} {{ {} }}", stringify!($ty), fields.join(", "))
            }
        }
    };
}

/// Implements [`RustLiteral`] for an enum of unit variants.
macro_rules! literal_unit_enum {
    ($ty:ident) => {
        impl $crate::layers::RustLiteral for $ty {
            fn rust(&self) -> String {
                format!("::seqmodel::ir::{}::{:?}", stringify!($ty), self)
            }
        }
    };
}

pub(crate) use {literal_struct, literal_unit_enum};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_keep_their_bits() {
        assert_eq!(0.5f32.rust(), "f32::from_bits(0x3f000000)");
        assert_eq!(Some(3usize).rust(), "::core::option::Option::Some(3usize)");
        assert_eq!([1i64, -2].rust(), "[1i64, -2i64]");
    }
}
