//! End-to-end tests of the `trainer` commands on the committed Fashion-MNIST sample.

mod errors;
mod init;
mod pruning;
mod reproducibility;
