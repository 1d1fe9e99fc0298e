//! Shared, interned strings for the parts of iptables rules that repeat: chain, target, module
//! and option names, and values (a kube-proxy table of 100,000 rules names 50,000 chains and
//! repeats each service's comment and address on several rules).
//!
//! A [`Name`] is a reference-counted `str`: cloning it copies a pointer. Inside an
//! [`interned`] scope every `Name` made from the same text shares one allocation, so parsing or
//! deserialising a big ruleset allocates once per distinct string rather than once per field.
//! Outside a scope a `Name` is an ordinary owned string. The JSON form is a plain string.

use std::borrow::{Borrow, Cow};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable, cheaply cloned string (see the module docs).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    /// A name for `s`, shared with every equal name made in the current [`interned`] scope.
    pub fn new(s: &str) -> Name {
        INTERNER.with(|cell| match cell.borrow_mut().as_mut() {
            Some(set) => set.name(s),
            None => Name(Arc::from(s)),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A table of names: equal texts get one shared [`Name`]. Parsers that make many names
/// hold one of these directly (no thread-local lookup per word); [`interned`] puts one in a
/// thread-local for code that only has `Name::new` (deserialisation).
#[derive(Default)]
pub struct Interner {
    set: Set,
}

impl Interner {
    /// Room for about `n` distinct names before the table grows.
    pub fn with_capacity(n: usize) -> Self {
        Interner {
            set: Set::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// The shared name for `s`.
    pub fn name(&mut self, s: &str) -> Name {
        if let Some(n) = self.set.get(s) {
            return n.clone();
        }
        let n = Name(Arc::from(s));
        self.set.insert(n.clone());
        n
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::new("")
    }
}

impl Deref for Name {
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

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Name::new(&s)
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Self {
        Name::new(s)
    }
}

impl From<Cow<'_, str>> for Name {
    fn from(s: Cow<'_, str>) -> Self {
        Name::new(&s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0.to_string()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        &*self.0 == other.as_str()
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == &*other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == &*other.0
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name, E> {
                Ok(Name::new(v))
            }
        }
        d.deserialize_str(V)
    }
}

impl JsonSchema for Name {
    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(g)
    }
}

/// The values of one iptables option: most options have exactly one, so one is kept inline.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Values(Repr);

#[derive(Clone, PartialEq, Eq, Hash, Default)]
enum Repr {
    #[default]
    None,
    One(Name),
    Many(Vec<Name>),
}

impl Values {
    pub const fn new() -> Self {
        Values(Repr::None)
    }

    pub fn push(&mut self, v: impl Into<Name>) {
        let v = v.into();
        self.0 = match std::mem::take(&mut self.0) {
            Repr::None => Repr::One(v),
            Repr::One(a) => Repr::Many(vec![a, v]),
            Repr::Many(mut all) => {
                all.push(v);
                Repr::Many(all)
            }
        };
    }

    pub fn as_slice(&self) -> &[Name] {
        match &self.0 {
            Repr::None => &[],
            Repr::One(v) => std::slice::from_ref(v),
            Repr::Many(all) => all,
        }
    }
}

impl Deref for Values {
    type Target = [Name];
    fn deref(&self) -> &[Name] {
        self.as_slice()
    }
}

impl<T> PartialEq<Vec<T>> for Values
where
    Name: PartialEq<T>,
{
    fn eq(&self, other: &Vec<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T, const N: usize> PartialEq<[T; N]> for Values
where
    Name: PartialEq<T>,
{
    fn eq(&self, other: &[T; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<T: Into<Name>> FromIterator<T> for Values {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v = Values::new();
        for x in iter {
            v.push(x);
        }
        v
    }
}

impl<T: Into<Name>> From<Vec<T>> for Values {
    fn from(all: Vec<T>) -> Self {
        all.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Values {
    type Item = &'a Name;
    type IntoIter = std::slice::Iter<'a, Name>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl Serialize for Values {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Name>::deserialize(d)?.into())
    }
}

impl JsonSchema for Values {
    fn schema_name() -> Cow<'static, str> {
        Vec::<String>::schema_name()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Vec::<String>::json_schema(g)
    }
}

/// FxHash-style hasher: the interner hashes short ASCII names, where SipHash's setup
/// dominates. The final rotation moves the well-mixed high bits of the last multiply to the
/// low bits the table indexes with (without it, similar names collide).
#[derive(Default)]
struct FxHasher(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

type Set = HashSet<Name, BuildHasherDefault<FxHasher>>;

thread_local! {
    static INTERNER: RefCell<Option<Interner>> = const { RefCell::new(None) };
}

/// Run `f` with string interning on for this thread: every [`Name`] made inside shares the
/// allocation of an equal one. Nested scopes share the outer scope's table; the table is
/// dropped when the outermost scope ends (the names themselves live on).
pub fn interned<R>(f: impl FnOnce() -> R) -> R {
    let outer = INTERNER.with(|cell| {
        let mut c = cell.borrow_mut();
        if c.is_some() {
            true
        } else {
            *c = Some(Interner::default());
            false
        }
    });
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            if !self.0 {
                INTERNER.with(|cell| *cell.borrow_mut() = None);
            }
        }
    }
    let _reset = Reset(outer);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_made_in_a_scope_share_one_allocation() {
        let (a, b) = interned(|| (Name::new("KUBE-SERVICES"), Name::from("KUBE-SERVICES")));
        assert!(Arc::ptr_eq(&a.0, &b.0));
        let c = Name::new("KUBE-SERVICES");
        assert_eq!(a, c);
        assert!(
            !Arc::ptr_eq(&a.0, &c.0),
            "outside a scope nothing is shared"
        );
    }

    #[test]
    fn nested_scopes_share_the_outer_table_and_it_ends_with_the_outer_one() {
        let (a, b) = interned(|| {
            let a = Name::new("x");
            let b = interned(|| Name::new("x"));
            (a, b)
        });
        assert!(Arc::ptr_eq(&a.0, &b.0));
        INTERNER.with(|c| assert!(c.borrow().is_none()));
    }

    #[test]
    fn json_form_is_a_plain_string_and_values_a_plain_array() {
        let v: Values = vec!["a", "b c"].into();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["a","b c"]"#);
        let back: Values = serde_json::from_str(r#"["a","b c"]"#).unwrap();
        assert_eq!(back, v);
        let one: Values = serde_json::from_str(r#"["x"]"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0], "x");
        let none: Values = serde_json::from_str("[]").unwrap();
        assert!(none.is_empty());
        assert_eq!(
            serde_json::to_string(&Name::new("n\"1")).unwrap(),
            r#""n\"1""#
        );
    }

    #[test]
    fn push_grows_from_none_to_many_in_order() {
        let mut v = Values::new();
        v.push("a");
        assert_eq!(v.as_slice(), ["a"]);
        v.push("b");
        v.push("c");
        assert_eq!(v.join(" "), "a b c");
    }
}
