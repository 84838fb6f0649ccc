//! Walking a module's float parameters with their paths.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Sees every float parameter of a module with its path (e.g. `conv1.weight`) and the type name
/// of the module holding it (e.g. `Conv2d`).
pub trait ParamVisitor {
    /// One parameter.
    fn visit<const D: usize>(&mut self, path: &str, container: &str, param: &Param<Tensor<D>>);
}

/// Replaces float parameters of a module, given their paths.
pub trait ParamMapper {
    /// One parameter: return it, or a replacement (keep its id to keep the module's identity).
    fn map<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>>;
}

/// The module path of the parameter being visited, from `enter_module`/`exit_module` calls.
#[derive(Default)]
struct Stack(Vec<(String, String)>);

impl Stack {
    fn path(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        names.join(".")
    }
    fn container(&self) -> &str {
        self.0.last().map_or("", |(_, c)| c.as_str())
    }
}

struct Visit<'a, V> {
    stack: Stack,
    inner: &'a mut V,
}

impl<V: ParamVisitor> ModuleVisitor for Visit<'_, V> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.stack.0.push((name.to_string(), container.to_string()));
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.0.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.stack.path();
        self.inner.visit(&path, self.stack.container(), param);
    }
}

struct Map<'a, M> {
    stack: Stack,
    inner: &'a mut M,
}

impl<P: ParamMapper> ModuleMapper for Map<'_, P> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.stack.0.push((name.to_string(), container.to_string()));
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.0.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.stack.path();
        self.inner.map(&path, param)
    }
}

/// Call `visitor` on every float parameter of `module`, in traversal order.
pub fn visit<M: Module>(module: &M, visitor: &mut impl ParamVisitor) {
    module.visit(&mut Visit {
        stack: Stack::default(),
        inner: visitor,
    });
}

/// Rebuild `module` with every float parameter passed through `mapper`, in traversal order.
pub fn map<M: Module, P: ParamMapper>(module: M, mapper: &mut P) -> M {
    module.map(&mut Map {
        stack: Stack::default(),
        inner: mapper,
    })
}
