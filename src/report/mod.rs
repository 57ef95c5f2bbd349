//! Pages to look at instead of files to read: a live `index.html` in every run directory, the
//! gallery of all runs (`vqclip gallery`), and the result pages of `classify --html` and
//! `search --html`. Self-contained: inline CSS and SVG, a few lines of plain JavaScript, images
//! by relative path, no network. Everything a user wrote is escaped.
pub mod gallery;
pub mod html;
pub mod plot;
pub mod results;
pub mod run_page;
