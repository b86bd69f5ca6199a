//! The list type of list settings (hosts, schemes, links).

use serde::{Deserialize, Deserializer, Serialize};

/// A list setting that accepts either a comma-separated string (as environment variables
/// give it: `PORTCULLIS_MOBILE_SCHEMES=alga,alga-dev`) or a TOML list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StringList(pub Vec<String>);

impl StringList {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(d)? {
            Raw::One(s) => vec![s],
            Raw::Many(v) => v,
        };
        Ok(StringList(
            items
                .iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_from_strings_or_lists() {
        let a: StringList = serde_json::from_str("\" a.example.com, b.example.com ,\"").unwrap();
        assert_eq!(a.0, ["a.example.com", "b.example.com"]);
        let b: StringList = serde_json::from_str("[\"alga\"]").unwrap();
        assert_eq!(b.0, ["alga"]);
        let empty: StringList = serde_json::from_str("\"\"").unwrap();
        assert!(empty.is_empty());
    }
}
