//! Serialized states round trip, and a serialized state that breaks the
//! invariants (corrupt storage, a hostile peer) fails to deserialize instead
//! of becoming a broken `DvvSet`.
//!
//! The crate adds no serde format as a dependency, so this file carries a
//! tiny self-describing one: a tree of unsigned integers, options and
//! sequences (structs and tuples become sequences, as in postcard).

mod support;

use gyre_versioning::{Context, DvvSet, Policy};
use proptest::prelude::*;
use support::{Cluster, State, check_invariants, history};
use tree::Tree;

mod tree {
    use std::fmt;

    use serde::de::value::SeqDeserializer;
    use serde::de::{self, IntoDeserializer, Visitor};
    use serde::ser::{self, Impossible, Serialize};

    #[derive(Clone, Debug, PartialEq)]
    pub(crate) enum Tree {
        Unit,
        U64(u64),
        Str(String),
        None,
        Some(Box<Tree>),
        Seq(Vec<Tree>),
    }

    #[derive(Debug)]
    pub(crate) struct TreeError(pub(crate) String);

    impl fmt::Display for TreeError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for TreeError {}
    impl ser::Error for TreeError {
        fn custom<T: fmt::Display>(msg: T) -> Self {
            Self(msg.to_string())
        }
    }
    impl de::Error for TreeError {
        fn custom<T: fmt::Display>(msg: T) -> Self {
            Self(msg.to_string())
        }
    }

    pub(crate) fn to_tree<T: Serialize>(v: &T) -> Tree {
        v.serialize(Ser).expect("serializable")
    }

    pub(crate) fn from_tree<T: de::DeserializeOwned>(t: Tree) -> Result<T, TreeError> {
        T::deserialize(t)
    }

    struct Ser;

    fn unsupported<T>(what: &str) -> Result<T, TreeError> {
        Err(TreeError(format!("{what} not supported")))
    }

    pub(crate) struct Collect(Vec<Tree>);

    impl ser::SerializeSeq for Collect {
        type Ok = Tree;
        type Error = TreeError;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TreeError> {
            self.0.push(v.serialize(Ser)?);
            Ok(())
        }
        fn end(self) -> Result<Tree, TreeError> {
            Ok(Tree::Seq(self.0))
        }
    }
    impl ser::SerializeTuple for Collect {
        type Ok = Tree;
        type Error = TreeError;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TreeError> {
            ser::SerializeSeq::serialize_element(self, v)
        }
        fn end(self) -> Result<Tree, TreeError> {
            ser::SerializeSeq::end(self)
        }
    }
    impl ser::SerializeTupleStruct for Collect {
        type Ok = Tree;
        type Error = TreeError;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TreeError> {
            ser::SerializeSeq::serialize_element(self, v)
        }
        fn end(self) -> Result<Tree, TreeError> {
            ser::SerializeSeq::end(self)
        }
    }
    impl ser::SerializeStruct for Collect {
        type Ok = Tree;
        type Error = TreeError;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            _key: &'static str,
            v: &T,
        ) -> Result<(), TreeError> {
            ser::SerializeSeq::serialize_element(self, v)
        }
        fn end(self) -> Result<Tree, TreeError> {
            ser::SerializeSeq::end(self)
        }
    }

    impl ser::Serializer for Ser {
        type Ok = Tree;
        type Error = TreeError;
        type SerializeSeq = Collect;
        type SerializeTuple = Collect;
        type SerializeTupleStruct = Collect;
        type SerializeTupleVariant = Impossible<Tree, TreeError>;
        type SerializeMap = Impossible<Tree, TreeError>;
        type SerializeStruct = Collect;
        type SerializeStructVariant = Impossible<Tree, TreeError>;

        fn serialize_bool(self, v: bool) -> Result<Tree, TreeError> {
            Ok(Tree::U64(v.into()))
        }
        fn serialize_i8(self, _: i8) -> Result<Tree, TreeError> {
            unsupported("i8")
        }
        fn serialize_i16(self, _: i16) -> Result<Tree, TreeError> {
            unsupported("i16")
        }
        fn serialize_i32(self, _: i32) -> Result<Tree, TreeError> {
            unsupported("i32")
        }
        fn serialize_i64(self, _: i64) -> Result<Tree, TreeError> {
            unsupported("i64")
        }
        fn serialize_u8(self, v: u8) -> Result<Tree, TreeError> {
            Ok(Tree::U64(v.into()))
        }
        fn serialize_u16(self, v: u16) -> Result<Tree, TreeError> {
            Ok(Tree::U64(v.into()))
        }
        fn serialize_u32(self, v: u32) -> Result<Tree, TreeError> {
            Ok(Tree::U64(v.into()))
        }
        fn serialize_u64(self, v: u64) -> Result<Tree, TreeError> {
            Ok(Tree::U64(v))
        }
        fn serialize_f32(self, _: f32) -> Result<Tree, TreeError> {
            unsupported("f32")
        }
        fn serialize_f64(self, _: f64) -> Result<Tree, TreeError> {
            unsupported("f64")
        }
        fn serialize_char(self, v: char) -> Result<Tree, TreeError> {
            Ok(Tree::Str(v.to_string()))
        }
        fn serialize_str(self, v: &str) -> Result<Tree, TreeError> {
            Ok(Tree::Str(v.to_owned()))
        }
        fn serialize_bytes(self, v: &[u8]) -> Result<Tree, TreeError> {
            Ok(Tree::Seq(v.iter().map(|&b| Tree::U64(b.into())).collect()))
        }
        fn serialize_none(self) -> Result<Tree, TreeError> {
            Ok(Tree::None)
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Tree, TreeError> {
            Ok(Tree::Some(Box::new(v.serialize(Ser)?)))
        }
        fn serialize_unit(self) -> Result<Tree, TreeError> {
            Ok(Tree::Unit)
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<Tree, TreeError> {
            Ok(Tree::Unit)
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<Tree, TreeError> {
            Ok(Tree::Str(variant.to_owned()))
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            v: &T,
        ) -> Result<Tree, TreeError> {
            v.serialize(Ser)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Tree, TreeError> {
            unsupported("newtype variant")
        }
        fn serialize_seq(self, len: Option<usize>) -> Result<Collect, TreeError> {
            Ok(Collect(Vec::with_capacity(len.unwrap_or(0))))
        }
        fn serialize_tuple(self, len: usize) -> Result<Collect, TreeError> {
            Ok(Collect(Vec::with_capacity(len)))
        }
        fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Collect, TreeError> {
            Ok(Collect(Vec::with_capacity(len)))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, TreeError> {
            unsupported("tuple variant")
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, TreeError> {
            unsupported("map")
        }
        fn serialize_struct(self, _: &'static str, len: usize) -> Result<Collect, TreeError> {
            Ok(Collect(Vec::with_capacity(len)))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, TreeError> {
            unsupported("struct variant")
        }
    }

    impl<'de> de::Deserializer<'de> for Tree {
        type Error = TreeError;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TreeError> {
            match self {
                Tree::Unit => visitor.visit_unit(),
                Tree::U64(v) => visitor.visit_u64(v),
                Tree::Str(s) => visitor.visit_string(s),
                Tree::None => visitor.visit_none(),
                Tree::Some(t) => visitor.visit_some(*t),
                Tree::Seq(items) => {
                    let mut seq = SeqDeserializer::new(items.into_iter());
                    let value = visitor.visit_seq(&mut seq)?;
                    seq.end()?;
                    Ok(value)
                }
            }
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            _: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, TreeError> {
            match self {
                Tree::Str(s) => visitor.visit_enum(s.into_deserializer()),
                _ => Err(TreeError("expected a unit variant".into())),
            }
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct identifier ignored_any
        }
    }

    impl<'de> IntoDeserializer<'de, TreeError> for Tree {
        type Deserializer = Self;
        fn into_deserializer(self) -> Self {
            self
        }
    }
}

fn roundtrip(s: &State) -> State {
    tree::from_tree(tree::to_tree(s)).expect("a valid state deserializes")
}

/// The tree of a state: `[[entry…]]`, an entry `[node, counter, [value…]]`,
/// a value `[dot counter, timestamp, None | Some(v)]`.
fn entries(t: &mut Tree) -> &mut Vec<Tree> {
    match t {
        Tree::Seq(fields) => match fields.first_mut() {
            Some(Tree::Seq(entries)) => entries,
            other => panic!("not an entry list: {other:?}"),
        },
        other => panic!("not a state: {other:?}"),
    }
}

fn field(t: &mut Tree, i: usize) -> &mut Tree {
    match t {
        Tree::Seq(fields) => &mut fields[i],
        other => panic!("not a struct: {other:?}"),
    }
}

fn values(entry: &mut Tree) -> &mut Vec<Tree> {
    match field(entry, 2) {
        Tree::Seq(v) => v,
        other => panic!("not a value list: {other:?}"),
    }
}

fn refused(t: Tree) -> String {
    match tree::from_tree::<State>(t) {
        Ok(s) => panic!("accepted a corrupt state: {s:?}"),
        Err(e) => e.0,
    }
}

/// Two entries, each with two siblings: node 1's dots 2 and 3 (of 3), node
/// 2's tombstone at dot 1 and value at dot 2 (of 2).
fn sample() -> State {
    let p = Policy::siblings();
    let (n, ts) = (support::node, support::ts);
    let empty = Context::empty();
    let mut s = State::new();
    for v in 1..=3 {
        s.put(&empty, v, n(1), ts(v.into()), &p)
            .expect("under the limit");
    }
    s.delete(&empty, n(2), ts(4), &p).expect("under the limit");
    let ctx = Context::from_entries([(n(1), 1)]);
    s.put(&ctx, 5, n(2), ts(5), &p).expect("under the limit");
    s
}

#[test]
fn the_serialized_form_is_compact_and_round_trips() {
    let s = sample();
    let mut t = tree::to_tree(&s);
    // Entries name their node once; values carry only their dot counter,
    // timestamp, value and expiry.
    let first = entries(&mut t)
        .iter_mut()
        .map(values)
        .find(|v| v.len() == 2)
        .expect("an entry with two values");
    assert!(
        matches!(&first[0], Tree::Seq(v) if v.len() == 4),
        "{first:?}"
    );
    assert_eq!(roundtrip(&s), s);
    let ctx: Context = tree::from_tree(tree::to_tree(&s.context())).unwrap();
    assert_eq!(ctx, s.context());
    let p: Policy = tree::from_tree(tree::to_tree(&Policy::lww())).unwrap();
    assert_eq!(p, Policy::lww());
}

#[test]
fn states_breaking_invariants_are_refused() {
    let base = tree::to_tree(&sample());

    let mut t = base.clone();
    entries(&mut t).swap(0, 1);
    assert!(refused(t).contains("not sorted by node"));

    let mut t = base.clone();
    let e = entries(&mut t);
    let dup = e[0].clone();
    e.insert(1, dup);
    assert!(refused(t).contains("duplicate node"));

    let mut t = base.clone();
    *field(&mut entries(&mut t)[0], 1) = Tree::U64(0);
    assert!(refused(t).contains("zero counter"));

    // An entry with two values (dot 2 at least).
    let idx = {
        let mut t = base.clone();
        entries(&mut t)
            .iter_mut()
            .map(values)
            .position(|v| v.len() == 2)
            .unwrap()
    };

    let mut t = base.clone();
    *field(&mut entries(&mut t)[idx], 1) = Tree::U64(1);
    assert!(refused(t).contains("beyond its entry's counter"));

    let mut t = base.clone();
    values(&mut entries(&mut t)[idx]).swap(0, 1);
    assert!(refused(t).contains("not strictly increasing"));

    let mut t = base.clone();
    let v = values(&mut entries(&mut t)[idx]);
    v[1] = v[0].clone();
    assert!(refused(t).contains("not strictly increasing"));

    let mut t = base.clone();
    *field(&mut values(&mut entries(&mut t)[idx])[0], 0) = Tree::U64(0);
    assert!(refused(t).contains("zero dot counter"));

    // A tombstone (value `None`) cannot expire.
    let mut t = base.clone();
    let tombstone = entries(&mut t)
        .iter_mut()
        .flat_map(|e| values(e).iter_mut())
        .find(|v| matches!(v, Tree::Seq(f) if f[2] == Tree::None))
        .expect("the sample has a tombstone");
    *field(tombstone, 3) = Tree::Some(Box::new(Tree::U64(9)));
    assert!(refused(t).contains("tombstone with an expiry"));

    // Structural garbage is a plain deserialization error.
    assert!(tree::from_tree::<State>(Tree::U64(3)).is_err());
    assert!(tree::from_tree::<State>(Tree::Seq(vec![])).is_err());

    // A context out of order is refused too.
    let n = |x| Tree::U64(x);
    let bad_ctx = Tree::Seq(vec![
        Tree::Seq(vec![n(2), n(1)]),
        Tree::Seq(vec![n(1), n(1)]),
    ]);
    assert!(tree::from_tree::<Context>(bad_ctx).is_err());
}

/// Rewrites every counter in the tree with `f`.
fn mutate_counters(t: &mut Tree, f: &mut impl FnMut(u64) -> u64) {
    match t {
        Tree::U64(v) => *v = f(*v),
        Tree::Some(inner) => mutate_counters(inner, f),
        Tree::Seq(items) => items.iter_mut().for_each(|i| mutate_counters(i, f)),
        Tree::Unit | Tree::Str(_) | Tree::None => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn realistic_states_round_trip(ops in history(3, 3, 40), lww in any::<bool>()) {
        let p = if lww { Policy::lww() } else { Policy::siblings() };
        let c = Cluster::run(3, 3, p, &ops);
        for r in &c.replicas {
            prop_assert_eq!(&roundtrip(r), r);
        }
    }

    /// `from_parts` rebuilds exactly what `parts` lists (the path storage
    /// encoders take instead of serde).
    #[test]
    fn parts_round_trip(ops in history(3, 3, 40), lww in any::<bool>()) {
        let p = if lww { Policy::lww() } else { Policy::siblings() };
        let c = Cluster::run(3, 3, p, &ops);
        for r in &c.replicas {
            let parts = r.parts().map(|(node, counter, siblings)| {
                let values: Vec<_> = siblings
                    .iter()
                    .map(|s| (s.dot.counter, s.timestamp, s.value, s.expires))
                    .collect();
                (node, counter, values)
            });
            prop_assert_eq!(&DvvSet::from_parts(parts).expect("valid parts"), r);
        }
    }

    /// Whatever the corruption, deserialization either fails or yields a
    /// state that keeps every invariant and can be merged.
    #[test]
    fn corrupted_states_are_refused_or_valid(
        ops in history(3, 3, 40),
        changes in prop::collection::vec((any::<prop::sample::Index>(), 0u64..6), 1..4),
    ) {
        let p = Policy::siblings();
        let c = Cluster::run(3, 3, p, &ops);
        let mut t = tree::to_tree(&c.replicas[0]);
        let mut numbers = 0usize;
        mutate_counters(&mut t, &mut |v| { numbers += 1; v });
        if numbers > 0 {
            for (at, new) in changes {
                let target = at.index(numbers);
                let mut i = 0usize;
                mutate_counters(&mut t, &mut |v| {
                    let out = if i == target { new } else { v };
                    i += 1;
                    out
                });
            }
        }
        if let Ok(s) = tree::from_tree::<DvvSet<u32>>(t) {
            check_invariants(&s);
            let mut merged = s.clone();
            merged.sync(&c.replicas[1], &p);
            check_invariants(&merged);
            prop_assert_eq!(&roundtrip(&s), &s);
        }
    }
}
