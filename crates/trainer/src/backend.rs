//! The only file that knows which backends were compiled in, and the one that picks the GPU.

use std::sync::OnceLock;

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

    /// Whether the backend runs on a GPU (or a GPU emulation): one data-parallel worker by
    /// default, and CPU thread counts do not apply.
    pub fn is_gpu(self) -> bool {
        self == BackendKind::Wgpu
    }

    /// Data-parallel workers per training step unless asked otherwise: two on the CPU backends
    /// (faster on 2 cores than two threads in one), one on a GPU.
    pub fn default_workers(self) -> usize {
        if self.is_gpu() { 1 } else { 2 }
    }

    /// The device that runs this backend, in words (for the GPU: the adapter chosen).
    pub fn device_description(self) -> Option<String> {
        match self {
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => wgpu::device().ok().map(|(_, d)| d.clone()),
            _ => None,
        }
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
            BackendKind::Wgpu => wgpu::device()
                .map(|(d, _)| d.clone())
                .map_err(|e| anyhow::anyhow!("{e}")),
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

/// The GPU adapter asked for with `--device` (or `FILTERLAB_WGPU_DEVICE`): an index into the list
/// `trainer info` prints. Set once, before any device is made.
static ADAPTER: OnceLock<Option<usize>> = OnceLock::new();

/// Choose the GPU adapter (`None`: the best one: discrete, then integrated, then a CPU
/// emulation). Only the first call has an effect; call it before any device is made.
pub fn select_adapter(index: Option<usize>) -> Result<()> {
    let env = std::env::var("FILTERLAB_WGPU_DEVICE").ok();
    let from_env = match env.as_deref() {
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            anyhow::anyhow!(
                "FILTERLAB_WGPU_DEVICE={v} is not an adapter index (see `trainer info`)"
            )
        })?),
        None => None,
    };
    let _ = ADAPTER.set(index.or(from_env));
    Ok(())
}

/// One GPU adapter wgpu sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adapter {
    /// Its index, for `--device`.
    pub index: usize,
    /// Name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// `discrete`, `integrated`, `virtual`, `cpu` (an emulation such as Mesa's lavapipe) or
    /// `other`.
    pub kind: String,
    /// Graphics API, e.g. `vulkan`.
    pub api: String,
    /// Driver and its version.
    pub driver: String,
}

/// The GPU adapters wgpu sees (none without the `wgpu` feature).
pub fn adapters() -> Vec<Adapter> {
    #[cfg(feature = "wgpu")]
    {
        wgpu::adapters()
    }
    #[cfg(not(feature = "wgpu"))]
    {
        Vec::new()
    }
}

#[cfg(feature = "wgpu")]
mod wgpu {
    //! Picking and describing the wgpu adapter.

    use burn::tensor::wgpu::wgpu as w;
    use burn::tensor::{Device, DeviceKind};

    use super::{ADAPTER, Adapter};

    /// Graphics APIs considered, in the order wgpu's automatic choice tries them.
    fn backends() -> w::Backends {
        w::Backends::PRIMARY
    }

    fn kind_name(t: w::DeviceType) -> &'static str {
        match t {
            w::DeviceType::DiscreteGpu => "discrete",
            w::DeviceType::IntegratedGpu => "integrated",
            w::DeviceType::VirtualGpu => "virtual",
            w::DeviceType::Cpu => "cpu",
            w::DeviceType::Other => "other",
        }
    }

    fn raw_adapters() -> Vec<w::AdapterInfo> {
        let instance = w::Instance::new(w::InstanceDescriptor {
            backends: backends(),
            ..w::InstanceDescriptor::new_without_display_handle()
        });
        pollster::block_on(instance.enumerate_adapters(backends()))
            .iter()
            .map(w::Adapter::get_info)
            .collect()
    }

    pub(super) fn adapters() -> Vec<Adapter> {
        raw_adapters()
            .into_iter()
            .enumerate()
            .map(|(index, a)| Adapter {
                index,
                name: a.name,
                kind: kind_name(a.device_type).to_string(),
                api: format!("{:?}", a.backend).to_lowercase(),
                driver: format!("{} {}", a.driver, a.driver_info).trim().to_string(),
            })
            .collect()
    }

    /// Burn's selector for adapter `index` of [`adapters`]: the n-th adapter of its type.
    fn selector(index: usize) -> Result<DeviceKind, String> {
        let all = raw_adapters();
        let Some(chosen) = all.get(index) else {
            return Err(format!(
                "there is no GPU adapter {index}: wgpu sees {} (list them with `trainer info`)",
                all.len()
            ));
        };
        let nth = all[..index]
            .iter()
            .filter(|a| a.device_type == chosen.device_type)
            .count();
        Ok(match chosen.device_type {
            w::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(nth),
            w::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(nth),
            w::DeviceType::VirtualGpu => DeviceKind::VirtualGpu(nth),
            w::DeviceType::Cpu => DeviceKind::Cpu,
            w::DeviceType::Other => {
                return Err(format!(
                    "adapter {index} ({}) is of no type wgpu can select; pick another",
                    chosen.name
                ));
            }
        })
    }

    /// The wgpu device of this process (made once) and its description.
    pub(super) fn device() -> Result<&'static (Device, String), &'static String> {
        static DEVICE: std::sync::OnceLock<Result<(Device, String), String>> =
            std::sync::OnceLock::new();
        DEVICE
            .get_or_init(|| {
                let kind = match ADAPTER.get().copied().flatten() {
                    Some(i) => selector(i)?,
                    None => DeviceKind::DefaultDevice,
                };
                let (device, setup) = Device::wgpu_options()
                    .device_kind(kind)
                    .init_with_setup()
                    .map_err(|e| {
                        format!(
                            "cannot start the wgpu backend: {e}. Is a GPU driver (or Mesa's \
                             lavapipe: apt-get install mesa-vulkan-drivers) installed? \
                             `trainer info` lists the adapters wgpu sees"
                        )
                    })?;
                let info = setup.adapter.get_info();
                let mut description = format!(
                    "{} ({}, {:?})",
                    info.name,
                    kind_name(info.device_type),
                    info.backend
                );
                eprintln!("wgpu device: {description}");
                if info.device_type == w::DeviceType::Cpu {
                    description
                        .push_str(" — a CPU emulation of a GPU: the real wgpu code path, but slow");
                }
                Ok((device, description))
            })
            .as_ref()
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
