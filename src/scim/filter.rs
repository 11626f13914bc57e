//! The one filter shape identity providers send to find a resource before
//! they create it (RFC 7644 §3.4.2.2): `<attribute> eq "<value>"`, e.g.
//! `userName eq "ana@example.com"` (Okta, Entra) or `displayName eq
//! "Sales"` (Entra's group matching). Anything else is refused with 400
//! `invalidFilter` rather than half-understood: a filter read wrongly would
//! answer "no such user" and make the IdP create a duplicate.

use super::error::{ScimError, ScimResult};

/// `attribute eq "value"`; the attribute as written (compare it with
/// [`Eq::is`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Eq {
    pub attribute: String,
    pub value: String,
}

impl Eq {
    /// Attribute names are case-insensitive (RFC 7643 §2.1).
    pub fn is(&self, name: &str) -> bool {
        self.attribute.eq_ignore_ascii_case(name)
    }
}

/// Longest filter read, in bytes.
const MAX_FILTER: usize = 1024;

pub fn parse(text: &str) -> ScimResult<Eq> {
    if text.len() > MAX_FILTER {
        return Err(ScimError::invalid_filter(format!(
            "the filter is longer than {MAX_FILTER} bytes"
        )));
    }
    let text = text.trim();
    let bad = || {
        ScimError::invalid_filter(format!(
            "filter {text:?}: only `<attribute> eq \"<value>\"` is supported"
        ))
    };
    let (attribute, rest) = text.split_once(char::is_whitespace).ok_or_else(bad)?;
    let rest = rest.trim_start();
    let (op, value) = rest.split_once(char::is_whitespace).ok_or_else(bad)?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(bad());
    }
    let value: String = serde_json::from_str(value.trim()).map_err(|_| bad())?;
    let valid_name = !attribute.is_empty()
        && attribute
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '$'));
    if !valid_name {
        return Err(bad());
    }
    Ok(Eq {
        attribute: attribute.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_eq_filters_idps_send() {
        let f = parse(r#"userName eq "test.user@okta.local""#).expect("okta");
        assert!(f.is("username"));
        assert_eq!(f.value, "test.user@okta.local");
        let f = parse(r#"displayName  EQ  "Sales \"A\"""#).expect("entra");
        assert!(f.is("displayName"));
        assert_eq!(f.value, "Sales \"A\"");
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "",
            "userName",
            r#"userName sw "a""#,
            r#"userName eq "a" and active eq true"#,
            r#"userName eq a"#,
            r#"emails[type eq "work"] eq "a""#,
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(e.scim_type, Some("invalidFilter"), "{bad}");
        }
    }
}
