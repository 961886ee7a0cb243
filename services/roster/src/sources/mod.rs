//! Roster sources that keep a district's people current: Clever (`clever`), OneRoster files
//! (`oneroster`) and the roster CSV. Every source hands its people and schools to `people` and
//! `schools`, which apply them the same way: keyed by the source's own ids, people who leave
//! deactivated (never deleted), people who come back reactivated.

pub mod clever;
pub mod oneroster;
pub mod people;
pub mod schools;
pub mod secret;
