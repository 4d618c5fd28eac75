//! `Name`: a group, topic, message id, receipt or reason as the history keeps it, eight
//! bytes per use and one allocation per distinct string.
//!
//! A run at scale records millions of events that repeat a few dozen names (groups, topics,
//! consumers) and a message id or receipt per handful of events. A `String` per field cost
//! 24 bytes inline and an allocation each time; a `Name` is a pointer to one shared string,
//! found again through an interner that belongs to the thread (each simulated seed runs on
//! its own thread), so equal strings made anywhere in a run share one allocation.
//!
//! Equality, order, hashing, `Display`, `Debug` and serde all go by the text, exactly as a
//! `String` would: which allocation a name points to is never observable, so interning
//! cannot change a history, a report or a hash.

use crate::fast_hash::FastBuildHasher;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

#[derive(Clone)]
pub struct Name(Arc<Box<str>>);

/// The interned names of this thread. A fixed-key hasher, and only ever looked up, never
/// iterated, so the interner cannot bring hash order into a run.
type Set = HashSet<Name, FastBuildHasher>;

/// Past this many names, the next miss drops the names nothing else holds any more, so a
/// thread that outlives many runs keeps only what is alive (the bound doubles with what
/// survives a purge).
const FIRST_PURGE_AT: usize = 1 << 16;

struct Interner {
    set: Set,
    purge_at: usize,
}

thread_local! {
    static NAMES: RefCell<Interner> = RefCell::new(Interner {
        set: Set::default(),
        purge_at: FIRST_PURGE_AT,
    });
}

impl Name {
    /// The shared name with this text (made and remembered the first time).
    pub fn new(text: &str) -> Name {
        NAMES.with(|names| {
            let mut names = names.borrow_mut();
            if let Some(found) = names.set.get(text) {
                return found.clone();
            }
            if names.set.len() >= names.purge_at {
                names.set.retain(|n| Arc::strong_count(&n.0) > 1);
                names.purge_at = (names.set.len() * 2).max(FIRST_PURGE_AT);
            }
            let made = Name(Arc::new(text.into()));
            names.set.insert(made.clone());
            made
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::new("")
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        **self.0 == *other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        **self.0 == **other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        **self.0 == **other
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        *self == **other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        **self == **other.0
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        **self == **other.0
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl Hash for Name {
    /// As `str` hashes, so that `Borrow<str>` lookups find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self.0).hash(state);
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&**self.0, f)
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self.0, f)
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        Name::new(text)
    }
}

impl From<&String> for Name {
    fn from(text: &String) -> Self {
        Name::new(text)
    }
}

impl From<String> for Name {
    fn from(text: String) -> Self {
        Name::new(&text)
    }
}

impl From<&Name> for Name {
    fn from(name: &Name) -> Self {
        name.clone()
    }
}

impl From<Name> for String {
    fn from(name: Name) -> Self {
        name.as_str().to_owned()
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Name;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name, E> {
                Ok(Name::new(v))
            }
        }
        d.deserialize_str(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_allocation_and_compare_as_strings() {
        let a = Name::new("g-orders");
        let b = Name::from(String::from("g-orders"));
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, b);
        assert_eq!(a, "g-orders");
        assert!(Name::new("a") < Name::new("b"));
        assert_eq!(format!("{a} {a:?}"), "g-orders \"g-orders\"");
        assert_eq!(std::mem::size_of::<Name>(), 8);
        assert_eq!(std::mem::size_of::<Option<Name>>(), 8);
    }

    #[test]
    fn names_nothing_holds_are_dropped_once_the_set_is_full() {
        let kept = Name::new("kept");
        for i in 0..FIRST_PURGE_AT + 1 {
            Name::new(&format!("m-{i}"));
        }
        let size = NAMES.with(|n| n.borrow().set.len());
        assert!(size < 8, "{size} names left after the purge");
        assert!(Arc::ptr_eq(&kept.0, &Name::new("kept").0));
    }
}
