//! One module per `trainer` command: its options (clap), the glue from a run directory to the
//! libraries, and its rendering. Analysis lives in the libraries.

pub(crate) mod bench;
pub(crate) mod compare;
pub(crate) mod eval;
pub(crate) mod export;
pub(crate) mod import;
pub(crate) mod info;
pub(crate) mod init_stats;
pub(crate) mod inspect;
pub(crate) mod prune;
pub(crate) mod redundancy;
pub(crate) mod sweep;
pub(crate) mod train;
