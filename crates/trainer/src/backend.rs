//! The only file that knows which backends were compiled in.

use anyhow::{Result, bail};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A Burn backend, whether or not it was compiled into this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Burn's pure-Rust CPU backend (cargo feature `flex`, on by default).
    Flex,
    /// Burn's classic ndarray CPU backend (cargo feature `ndarray`, on by default).
    Ndarray,
    /// GPU through wgpu (cargo feature `wgpu`).
    Wgpu,
}

impl BackendKind {
    /// Every backend, compiled or not.
    pub const ALL: [BackendKind; 3] = [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Wgpu];

    /// The backend's name, which is also its cargo feature.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// Whether this binary was compiled with the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Ndarray => cfg!(feature = "ndarray"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backends compiled into this binary.
    pub fn compiled() -> Vec<BackendKind> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The default: `flex` when compiled in, else the first compiled backend.
    pub fn default_compiled() -> BackendKind {
        Self::compiled()
            .first()
            .copied()
            .unwrap_or(BackendKind::Flex)
    }

    /// The plain (non-autodiff) device of this backend, or an error naming the cargo feature
    /// to enable when it was not compiled in.
    pub fn device(self) -> Result<Device> {
        match self {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[allow(unreachable_patterns)]
            other => {
                let compiled: Vec<&str> = Self::compiled().iter().map(|b| b.name()).collect();
                bail!(
                    "the {0} backend is not compiled into this binary (it has: {1}); rebuild with \
                     `cargo build --release -p trainer --features {0}`",
                    other.name(),
                    if compiled.is_empty() {
                        "none".to_string()
                    } else {
                        compiled.join(", ")
                    }
                )
            }
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_backend_names_the_feature() {
        for b in BackendKind::ALL {
            match b.device() {
                Ok(_) => assert!(b.is_compiled()),
                Err(e) => {
                    assert!(!b.is_compiled());
                    assert!(
                        e.to_string().contains(&format!("--features {}", b.name())),
                        "{e}"
                    );
                }
            }
        }
    }
}
