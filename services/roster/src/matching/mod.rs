//! Matching files to people (docs/matching.md): a district's people indexed every way a file
//! can name them (`index`), the comparison forms (`normalize`) and the rules (`resolve`).

mod index;
mod normalize;
mod resolve;

pub use index::{DistrictIndex, PersonRecord};
pub use normalize::Grade;
pub use resolve::resolve;

#[cfg(test)]
mod tests;
