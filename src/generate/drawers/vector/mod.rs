//! Vector drawing without diffvg: pixray's pixel drawer cells ([`grid`]), their coverage
//! ([`coverage`]), a differentiable stroke rasterizer ([`raster`]) and the SVG a vector run
//! writes beside its PNGs ([`svg`]).
pub mod coverage;
pub mod grid;
pub mod raster;
pub mod svg;
