//! [`NamePrefix`]: what the user list is searched by (`GET /api/users?q=`).

use super::{Username, UsernameError};

/// The start of a username: NFKC-normalised, 1–150 of the characters a
/// username may hold (every non-empty start of a valid name is one, so a
/// prefix is parsed as a name). Matching is by code point, case included,
/// as names are stored and sorted: the stores answer it with a range of
/// their name order (Redis `ZRANGEBYLEX`, DynamoDB `begins_with` on the
/// sort key, a `BTreeMap` range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePrefix(Username);

impl NamePrefix {
    /// Normalises and checks `raw` as [`Username::parse`] does.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        Username::parse(raw).map(Self)
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The prefix as a name: the first name it matches, if one has it.
    pub fn as_username(&self) -> &Username {
        &self.0
    }

    /// Whether `name` starts with it.
    pub fn matches(&self, name: &Username) -> bool {
        name.as_str().starts_with(self.0.as_str())
    }

    /// Where a page of matches starts: the prefix itself (inclusive), or
    /// just after `after` if that is later. `None`: nothing after `after`
    /// can match (it is past every match).
    pub fn start_after<'a>(&'a self, after: Option<&'a Username>) -> Option<PageStart<'a>> {
        match after {
            // Matches are one run of the name order from the prefix on: a
            // later name that does not match is past all of them.
            Some(a) if a.as_str() >= self.as_str() => {
                self.matches(a).then_some(PageStart::After(a))
            }
            _ => Some(PageStart::From(&self.0)),
        }
    }
}

/// Where a page of names starts (see [`NamePrefix::start_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStart<'a> {
    /// At this name, inclusive.
    From(&'a Username),
    /// Just after this name.
    After(&'a Username),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    #[test]
    fn prefixes_parse_as_names_do_and_match_by_code_point() {
        let p = NamePrefix::parse("ｊo").unwrap();
        assert_eq!(p.as_str(), "jo", "NFKC");
        assert!(p.matches(&name("josé")));
        assert!(p.matches(&name("jo")));
        assert!(!p.matches(&name("Jo")), "case counts");
        assert!(!p.matches(&name("ajo")));
        for bad in ["", "a b", "<", &"x".repeat(151)] {
            assert!(NamePrefix::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_page_starts_at_the_prefix_or_after_a_later_match() {
        let p = NamePrefix::parse("bo").unwrap();
        let (amy, bob, cy) = (name("amy"), name("bob"), name("cy"));
        assert_eq!(p.start_after(None), Some(PageStart::From(p.as_username())));
        assert_eq!(
            p.start_after(Some(&amy)),
            Some(PageStart::From(p.as_username()))
        );
        assert_eq!(p.start_after(Some(&bob)), Some(PageStart::After(&bob)));
        assert_eq!(p.start_after(Some(&cy)), None, "past every match");
    }
}
