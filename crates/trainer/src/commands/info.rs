//! `trainer info`: versions, compiled backends and threads, as JSON.

use anyhow::Result;

use crate::backend::BackendKind;

/// Print what this binary is and can do.
pub(crate) fn run() -> Result<()> {
    let info = serde_json::json!({
        "filterlab_version": env!("CARGO_PKG_VERSION"),
        "burn_version": crate::run::BURN_VERSION,
        "backends": BackendKind::compiled(),
        "default_backend": BackendKind::default_compiled(),
        "threads": rayon::current_num_threads(),
        "gpu_adapters": crate::backend::adapters(),
    });
    println!("{}", serde_json::to_string_pretty(&info)?);
    Ok(())
}
