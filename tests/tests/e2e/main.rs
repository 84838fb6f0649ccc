//! End-to-end tests of the `trainer` commands on the committed Fashion-MNIST sample.

mod bench;
mod compare;
mod dashboard;
mod errors;
mod init;
mod interop;
mod pruning;
mod repro;
mod reproducibility;
mod schedules;
mod slurm;
#[cfg(feature = "wgpu")]
mod wgpu;
