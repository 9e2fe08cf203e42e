//! Forward passes of the layers, on batch-first arrays.

pub mod basic;

pub mod time;
