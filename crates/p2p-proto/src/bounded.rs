//! Serde helpers that cap a vector's length while decoding: the declared
//! length is checked before any element is allocated, and the count is
//! checked again as elements arrive (for formats that do not declare it).

use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};
use std::marker::PhantomData;

/// Deserializes a `Vec<T>` of at most `N` elements.
pub fn vec<'de, D, T, const N: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T, const N: usize>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Bounded<T, N> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a sequence of at most {N} elements")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let declared = seq.size_hint().unwrap_or(0);
            if declared > N {
                return Err(A::Error::invalid_length(declared, &self));
            }
            let mut v = Vec::with_capacity(declared);
            while let Some(x) = seq.next_element()? {
                if v.len() == N {
                    return Err(A::Error::invalid_length(N + 1, &self));
                }
                v.push(x);
            }
            Ok(v)
        }
    }
    d.deserialize_seq(Bounded::<T, N>(PhantomData))
}
