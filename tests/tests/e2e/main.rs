//! End-to-end tests of the `trainer` commands on the committed Fashion-MNIST sample.

mod compare;
mod errors;
mod init;
mod pruning;
mod repro;
mod reproducibility;
