//! Sets of tags, for reasoning about routes without events.
//!
//! A flow carries a [`TagSet`]: every tag it may have, as a regular language (a regex over the whole
//! tag) narrowed by the `<filter>`/`<match>` patterns it did or did not match on the way. Patterns come
//! from [`TagMatcher::language`], the router's own translation, so explain and the router agree on what
//! matches. Whether a set is empty is decided exactly with lazy DFAs (a product search); when that search
//! cannot decide (a huge product, a pattern the lazy DFA gives up on), the answer is "may be non-empty":
//! a route that might exist is always shown.
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::{Anchored, Input};
use sluice_core::pattern::TagMatcher;
use std::collections::{HashSet, VecDeque};

/// Product states explored before giving up (then the set counts as non-empty).
const MAX_STATES: usize = 20_000;

/// The regex of any tag. A tag is one line: the router's globs (`.` in their regexes) never match a
/// newline, and a tag with one would only add "dropped" routes nobody can produce on purpose.
pub const ANY: &str = ".*";

#[derive(Debug, Clone)]
pub struct TagSet {
    /// How people read it: `kube.*`, `pii.(signup|payment)`, `**`.
    pub display: String,
    /// The tags before narrowing (a regex over the whole tag).
    pub base: String,
    must: Vec<String>,
    must_not: Vec<String>,
}

impl TagSet {
    pub fn new(display: impl Into<String>, base: impl Into<String>) -> Self {
        TagSet { display: display.into(), base: base.into(), must: Vec::new(), must_not: Vec::new() }
    }

    /// Exactly one tag.
    pub fn literal(tag: &str) -> Self {
        Self::new(tag, regex_syntax::escape(tag))
    }

    pub fn any() -> Self {
        Self::new("** (any tag)", ANY)
    }

    /// The tags of this set that `m` matches.
    pub fn matching(&self, m: &TagMatcher) -> TagSet {
        let mut t = self.clone();
        t.must.push(m.language().to_string());
        t
    }

    /// The tags of this set that `m` does not match.
    pub fn not_matching(&self, m: &TagMatcher) -> TagSet {
        let mut t = self.clone();
        t.must_not.push(m.language().to_string());
        t
    }

    /// False only when no tag can be in the set.
    pub fn may_be_non_empty(&self) -> bool {
        !matches!(Product::new(self).and_then(|mut p| p.is_empty()), Some(true))
    }

    /// A key for "the same flow seen before" (loops, repeated error routes).
    pub fn key(&self) -> String {
        format!("{}\u{0}{}\u{0}{}", self.base, self.must.join("\u{1}"), self.must_not.join("\u{1}"))
    }
}

/// One lazy DFA over the whole tag.
struct Auto {
    dfa: DFA,
    cache: Cache,
    /// True: the tag must be in this language; false: it must not.
    positive: bool,
}

struct Product {
    autos: Vec<Auto>,
    /// One byte per class of bytes every automaton treats alike (a few dozen instead of 256).
    bytes: Vec<u8>,
}

impl Product {
    fn new(t: &TagSet) -> Option<Product> {
        let mut autos = Vec::new();
        for (re, positive) in std::iter::once((&t.base, true))
            .chain(t.must.iter().map(|r| (r, true)))
            .chain(t.must_not.iter().map(|r| (r, false)))
        {
            let dfa = DFA::new(&format!(r"\A(?:{re})\z")).ok()?;
            let cache = dfa.create_cache();
            autos.push(Auto { dfa, cache, positive });
        }
        let mut classes = HashSet::new();
        let bytes = (0..=255u8)
            .filter(|b| classes.insert(autos.iter().map(|a| a.dfa.byte_classes().get(*b)).collect::<Vec<u8>>()))
            .collect();
        Some(Product { autos, bytes })
    }

    /// Some(true) when no string is in every positive language and in no negative one; None when the
    /// search could not decide.
    fn is_empty(&mut self) -> Option<bool> {
        let mut start = Vec::with_capacity(self.autos.len());
        for a in &mut self.autos {
            let input = Input::new("").anchored(Anchored::Yes);
            start.push(a.dfa.start_state_forward(&mut a.cache, &input).ok()?);
        }
        let mut seen: HashSet<Vec<LazyStateID>> = HashSet::new();
        let mut queue = VecDeque::new();
        seen.insert(start.clone());
        queue.push_back(start);
        let clears: Vec<usize> = self.autos.iter().map(|a| a.cache.clear_count()).collect();
        while let Some(states) = queue.pop_front() {
            if self.accepts_here(&states)? {
                return Some(false);
            }
            'bytes: for i in 0..self.bytes.len() {
                let b = self.bytes[i];
                let mut next = Vec::with_capacity(states.len());
                for (a, s) in self.autos.iter_mut().zip(&states) {
                    let n = a.dfa.next_state(&mut a.cache, *s, b).ok()?;
                    if n.is_quit() || n.is_unknown() {
                        return None;
                    }
                    // A positive language that can no longer match prunes the branch.
                    if a.positive && n.is_dead() {
                        continue 'bytes;
                    }
                    next.push(n);
                }
                if seen.insert(next.clone()) {
                    if seen.len() > MAX_STATES {
                        return None;
                    }
                    queue.push_back(next);
                }
            }
        }
        // A cleared cache reuses state ids: the search may have mixed states up.
        let cleared = self.autos.iter().zip(clears).any(|(a, c)| a.cache.clear_count() != c);
        (!cleared).then_some(true)
    }

    fn accepts_here(&mut self, states: &[LazyStateID]) -> Option<bool> {
        for (a, s) in self.autos.iter_mut().zip(states) {
            let eoi = a.dfa.next_eoi_state(&mut a.cache, *s).ok()?;
            if eoi.is_quit() || eoi.is_unknown() {
                return None;
            }
            if eoi.is_match() != a.positive {
                return Some(false);
            }
        }
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str) -> TagMatcher {
        TagMatcher::new(p).unwrap()
    }

    #[test]
    fn overlap_and_cover_follow_the_routers_patterns() {
        let kube = TagSet::new("kube.*", r"kube\..*");
        assert!(kube.matching(&m("kube.**")).may_be_non_empty());
        assert!(!kube.not_matching(&m("kube.**")).may_be_non_empty());
        assert!(!kube.matching(&m("pii.**")).may_be_non_empty());
        assert!(kube.matching(&m("kube.var.*")).may_be_non_empty());
        assert!(kube.not_matching(&m("kube.var.*")).may_be_non_empty());
        let pii = TagSet::new("pii.$1", r"pii\.(?:signup|payment)");
        assert!(!pii.not_matching(&m("pii.*")).may_be_non_empty());
        assert!(!pii.matching(&m("pii.other")).may_be_non_empty());
        assert!(pii.matching(&m("/payment/")).may_be_non_empty());
        assert!(!pii.not_matching(&m("pii.signup pii.payment")).may_be_non_empty());
        assert!(!TagSet::literal("a.b").matching(&m("a.{c,d}")).may_be_non_empty());
        assert!(TagSet::any().matching(&m("x")).not_matching(&m("y")).may_be_non_empty());
        assert!(!TagSet::any().matching(&m("x")).not_matching(&m("**")).may_be_non_empty());
    }
}
