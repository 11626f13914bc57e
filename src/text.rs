//! Client-supplied text: every length limit of the protocol counts
//! characters (Unicode scalar values), never bytes, so a name in Greek or
//! Japanese gets the same room as one in ASCII.

/// Whether `value` has between `min` and `max` characters (inclusive).
pub fn within(value: &str, min: usize, max: usize) -> bool {
    // Bytes bound characters from above and (÷4) from below: count only
    // when the byte length alone cannot decide.
    if value.len() < min || value.len() / 4 > max {
        return false;
    }
    if value.len() <= max && value.len() >= min.saturating_mul(4) {
        return true;
    }
    (min..=max).contains(&value.chars().count())
}

#[cfg(test)]
mod tests {
    use super::within;
    use proptest::prelude::*;

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(within(&"é".repeat(128), 1, 128));
        assert!(within(&"日".repeat(128), 1, 128));
        assert!(!within(&"日".repeat(129), 1, 128));
        assert!(!within("", 1, 128));
        assert!(within("", 0, 128));
        assert!(within(&"a".repeat(128), 1, 128));
        assert!(!within(&"a".repeat(129), 1, 128));
    }

    proptest! {
        #[test]
        fn same_as_counting(s in ".{0,40}", min in 0usize..20, max in 0usize..40) {
            prop_assert_eq!(within(&s, min, max), (min..=max).contains(&s.chars().count()));
        }
    }
}
