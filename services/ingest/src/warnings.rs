//! A job's warnings never grow with its input: each kind is named one by one up to a limit, the
//! rest counted in one line. (They travel in `job.created`, which must stay far below NATS's
//! maximum payload however large the upload.)

/// Warnings of one kind named one by one at most.
pub const NAMED_WARNINGS: usize = 20;

/// At most `NAMED_WARNINGS` of `warnings`, then one line counting the rest.
pub fn bounded(mut warnings: Vec<String>, what: &str) -> Vec<String> {
    if warnings.len() > NAMED_WARNINGS {
        let more = warnings.len() - NAMED_WARNINGS;
        warnings.truncate(NAMED_WARNINGS);
        warnings.push(format!("and {more} more {what}"));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_is_one_line() {
        let many: Vec<String> = (0..25).map(|n| format!("w{n}")).collect();
        let kept = bounded(many, "rows were skipped");
        assert_eq!(kept.len(), 21);
        assert_eq!(kept[19], "w19");
        assert_eq!(kept[20], "and 5 more rows were skipped");
        assert_eq!(bounded(vec!["one".into()], "x"), ["one"]);
    }
}
