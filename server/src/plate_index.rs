//! An in-memory index over the distinct canonical plates: [`PlateIndex`].

use std::collections::{BTreeSet, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, OnceLock, RwLock};

use safecity_core::sync::{Locked, ReadWriteLocked};
use safecity_core::{plate_distance, PlatePattern};

use crate::error::Result;
use crate::model::PlateQuery;

/// Longest query the fuzzy automaton takes; longer ones (never canonical
/// plates) are answered by a scan.
const MAX_FUZZY_QUERY: usize = 23;

/// Slack for the prefix cut: plates it lets through are checked exactly.
const SLACK: f32 = 1e-3;

/// An in-memory index over the distinct canonical plates.
///
/// Both backends keep one [`PlateIndex`]: it is loaded from the store's
/// distinct plates when the store opens, plates that an ingest adds are
/// added once the batch commits, and plates that a purge leaves without
/// sightings are removed once the purge batch commits. A wildcard or fuzzy
/// search asks the index for the matching plates and then reads their
/// sightings through the store's plate index (ordered by plate and time).
///
/// # Method
///
/// The plates are kept in sorted sets (B-trees) of their bytes, one per
/// plate length, twice: as written, and reversed. A sorted set of strings is a trie with its nodes
/// left implicit: the keys below a prefix form one contiguous range. A
/// query walks the keys in order with an automaton, keeping one automaton
/// state per character of the current key's prefix (the states of the
/// prefix it shares with the previous key are reused). When the automaton
/// rejects a prefix, no key below it can match, and the walk seeks past the
/// whole range in one B-tree descent.
///
/// - **Exact**: a B-tree lookup, `O(log n)`.
/// - **Fuzzy**, weighted look-alike distance ([`plate_distance`]) up to
///   `d`: the automaton state is one row of that distance's dynamic
///   programme (the candidate prefix against every prefix of the query).
///   Only the sets of lengths within `d` of the query's are walked, and in
///   each the plate length `L` is known: after `i` characters, `row[j]`
///   plus `|(L - i) - (m - j)|` (the rest must at least make up the
///   difference in length; costs are never negative) is a lower bound of
///   the distance of every plate below the prefix whose alignment passes
///   through `j`, and a prefix whose bound exceeds `d` for every `j` is
///   cut. This needs no triangle inequality and no
///   bound on the number of edits: the walk is exact for the weighted
///   distance itself. The substitution costs are read from
///   [`plate_distance`] on single characters, and every plate the walk
///   accepts is checked again with [`plate_distance`], so the result is
///   exactly the set a scan of all plates with `plate_distance(query, plate)
///   <= d` gives. Cost: `O(m)` per visited prefix (`m` the query length)
///   plus one `O(log n)` seek per cut prefix. The prefixes visited are those
///   within `d` of a prefix of the query near the diagonal; for 8-character
///   plates that is every prefix of up to `d` characters and a shrinking
///   fraction of the longer ones. On a million random plates (two shared
///   cores) `d = 1` takes about 3 ms (p99 5-9 ms) and `d = 2` about 20-25
///   ms (p99 35-57 ms), against 340-480 ms for a scan.
/// - **Wildcard** (`?`, `*`): the automaton is the pattern's position set
///   (a bit set, patterns are at most 16 characters). The walk runs over the
///   plates as written when the pattern begins with a literal, and over the
///   reversed plates with the reversed pattern when it ends with one (the
///   end with more literals before its first `*` wins), so `123*`, `*02`
///   and `???ABC02` visit only the plates near a narrow range. A pattern with
///   `*` at both ends and no anchored literal (`*ABC*`) visits every plate
///   once (only the lengths the pattern allows): a linear scan.
///   Every accepted plate is checked again with [`PlatePattern::matches`].
///
/// Memory: each plate is stored twice, as a boxed byte string in each of
/// two B-trees, and once packed in a hash set: roughly 100-120 bytes a
/// plate in all (an estimate: some 100-120 MB for a million plates).
///
/// # Consistency
///
/// Plates are added and removed under [`commit_with`](Self::commit_with), which
/// holds one lock across the database commit and the change to the index,
/// so the index sees the changes in the order they were committed (a purge
/// removing a plate and a later ingest adding it again end with the plate
/// present). Between a commit and the change to the index, a search may
/// miss a plate the commit just added. The index only knows the changes
/// made through this process: with several servers on one PostgreSQL
/// database, a server sees the plates another one adds after its next
/// start.
#[derive(Default)]
pub struct PlateIndex {
    sets: RwLock<Sets>,
    /// Held across a commit and the change it makes to `sets`.
    order: Mutex<()>,
}

/// The plates by length: `forward[n]` holds the bytes of the plates of `n`
/// characters, `reverse[n]` the same reversed; `short` the plates of up to
/// [`SHORT`] characters again, packed, for [`Sets::contains`]. Ingest asks
/// whether each read's plate is known; a B-tree answered that with some
/// 20-30 string comparisons, a sixth of ingest time (measured at 1 M
/// plates), a hash set with one.
#[derive(Default)]
struct Sets {
    forward: Vec<BTreeSet<Box<[u8]>>>,
    reverse: Vec<BTreeSet<Box<[u8]>>>,
    short: HashSet<u128>,
    len: usize,
}

/// Longest plate [`Sets::short`] holds.
const SHORT: usize = 15;

/// `plate`'s bytes and length in one number, when it has at most [`SHORT`]
/// bytes.
fn packed(plate: &[u8]) -> Option<u128> {
    (plate.len() <= SHORT).then(|| {
        plate
            .iter()
            .fold(plate.len() as u128, |key, &b| (key << 8) | u128::from(b))
    })
}

impl Sets {
    fn insert(&mut self, plate: &str) {
        let n = plate.len();
        if self.forward.len() <= n {
            self.forward.resize_with(n + 1, BTreeSet::new);
            self.reverse.resize_with(n + 1, BTreeSet::new);
        }
        if self.forward[n].insert(plate.as_bytes().into()) {
            self.reverse[n].insert(reversed(plate));
            self.short.extend(packed(plate.as_bytes()));
            self.len += 1;
        }
    }

    fn remove(&mut self, plate: &str) {
        let n = plate.len();
        if n < self.forward.len() && self.forward[n].remove(plate.as_bytes()) {
            self.reverse[n].remove(&reversed(plate)[..]);
            if let Some(key) = packed(plate.as_bytes()) {
                self.short.remove(&key);
            }
            self.len -= 1;
        }
    }

    fn contains(&self, plate: &str) -> bool {
        match packed(plate.as_bytes()) {
            Some(key) => self.short.contains(&key),
            None => self
                .forward
                .get(plate.len())
                .is_some_and(|set| set.contains(plate.as_bytes())),
        }
    }

    /// The sets of the plates with `lengths` characters.
    fn of_lengths(
        sets: &[BTreeSet<Box<[u8]>>],
        lengths: std::ops::RangeInclusive<usize>,
    ) -> &[BTreeSet<Box<[u8]>>] {
        let end = (*lengths.end()).min(sets.len().saturating_sub(1));
        sets.get(*lengths.start()..=end).unwrap_or(&[])
    }
}

impl std::fmt::Debug for PlateIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlateIndex")
            .field("plates", &self.len())
            .finish()
    }
}

fn reversed(plate: &str) -> Box<[u8]> {
    plate.bytes().rev().collect()
}

impl PlateIndex {
    /// An index of `plates`.
    pub fn new<S: AsRef<str>>(plates: impl IntoIterator<Item = S>) -> PlateIndex {
        let mut sets = Sets::default();
        for p in plates {
            sets.insert(p.as_ref());
        }
        PlateIndex {
            sets: RwLock::new(sets),
            order: Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Sets> {
        self.sets.read_locked()
    }

    /// How many plates the index holds.
    pub fn len(&self) -> usize {
        self.read().len
    }

    /// Whether the index holds no plate.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `added` and removes `removed`.
    pub fn apply<A: AsRef<str>, R: AsRef<str>>(&self, added: &[A], removed: &[R]) {
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let mut sets = self.sets.write_locked();
        for p in removed {
            sets.remove(p.as_ref());
        }
        for p in added {
            sets.insert(p.as_ref());
        }
    }

    /// Runs `commit` and, when it succeeds, adds `added` and removes
    /// `removed`, holding a lock across both so that concurrent changes
    /// reach the index in commit order.
    pub fn commit_with<T, A: AsRef<str>, R: AsRef<str>>(
        &self,
        added: &[A],
        removed: &[R],
        commit: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if added.is_empty() && removed.is_empty() {
            return commit();
        }
        let _order = self.order.locked();
        let out = commit()?;
        self.apply(added, removed);
        Ok(out)
    }

    /// Whether `plate` is in the index.
    pub fn contains(&self, plate: &str) -> bool {
        self.read().contains(plate)
    }

    /// The plates matching `query`, in byte order; none for
    /// [`PlateQuery::Any`].
    pub fn matching(&self, query: &PlateQuery) -> Vec<String> {
        match query {
            PlateQuery::Any => Vec::new(),
            PlateQuery::Exact(p) => {
                if self.contains(p) {
                    vec![p.clone()]
                } else {
                    Vec::new()
                }
            }
            PlateQuery::Wildcard(pattern) => self.wildcard(pattern),
            PlateQuery::Fuzzy {
                plate,
                max_distance,
            } => self.fuzzy(plate, *max_distance),
        }
    }

    /// The plates matching a `?`/`*` pattern, in byte order.
    pub fn wildcard(&self, pattern: &PlatePattern) -> Vec<String> {
        let text = pattern.as_str().as_bytes();
        let sets = self.read();
        let shortest = text.iter().filter(|&&b| b != b'*').count();
        let longest = if text.contains(&b'*') {
            usize::MAX
        } else {
            shortest
        };
        let mut out = Vec::new();
        if text.len() > 31 {
            // Longer than any pattern `PlatePattern::parse` makes.
            for set in Sets::of_lengths(&sets.forward, shortest..=longest) {
                out.extend(scan_set(set, |p| pattern.matches(p)));
            }
            out.sort_unstable();
            return out;
        }
        let backward: Vec<u8> = text.iter().rev().copied().collect();
        if anchor(&backward) > anchor(text) {
            let automaton = Wildcard::new(&backward);
            for set in Sets::of_lengths(&sets.reverse, shortest..=longest) {
                walk(set, &automaton, |key| {
                    let plate: String = key.iter().rev().map(|&b| char::from(b)).collect();
                    if pattern.matches(&plate) {
                        out.push(plate);
                    }
                });
            }
        } else {
            let automaton = Wildcard::new(text);
            for set in Sets::of_lengths(&sets.forward, shortest..=longest) {
                walk(set, &automaton, |key| {
                    let plate = String::from_utf8_lossy(key);
                    if pattern.matches(&plate) {
                        out.push(plate.into_owned());
                    }
                });
            }
        }
        out.sort_unstable();
        out
    }

    /// The plates within weighted distance `max_distance` of `plate`
    /// ([`plate_distance`]), in byte order.
    pub fn fuzzy(&self, plate: &str, max_distance: f32) -> Vec<String> {
        let sets = self.read();
        let exact = |candidate: &str| plate_distance(plate, candidate) <= max_distance;
        // Each inserted or deleted character costs 1.
        let spread = (max_distance + SLACK).max(0.0).floor() as usize;
        let lengths = plate.len().saturating_sub(spread)..=plate.len().saturating_add(spread);
        let mut out = Vec::new();
        if plate.len() > MAX_FUZZY_QUERY || !plate.is_ascii() {
            for set in Sets::of_lengths(&sets.forward, lengths) {
                out.extend(scan_set(set, exact));
            }
            out.sort_unstable();
            return out;
        }
        for (length, set) in sets.forward.iter().enumerate() {
            if !lengths.contains(&length) || set.is_empty() {
                continue;
            }
            let automaton = Fuzzy {
                query: plate.as_bytes(),
                length,
                limit: max_distance + SLACK,
                costs: substitution_costs(),
            };
            walk(set, &automaton, |key| {
                let candidate = String::from_utf8_lossy(key);
                if exact(&candidate) {
                    out.push(candidate.into_owned());
                }
            });
        }
        out.sort_unstable();
        out
    }

    /// The reference the index is tested and measured against: every plate
    /// of `plates` that `query` matches, by checking each one, in the
    /// order given.
    pub fn scan<'a>(plates: impl IntoIterator<Item = &'a str>, query: &PlateQuery) -> Vec<String> {
        plates
            .into_iter()
            .filter(|p| match query {
                PlateQuery::Any => false,
                PlateQuery::Exact(e) => p == e,
                PlateQuery::Wildcard(pattern) => pattern.matches(p),
                PlateQuery::Fuzzy {
                    plate,
                    max_distance,
                } => plate_distance(plate, p) <= *max_distance,
            })
            .map(str::to_owned)
            .collect()
    }
}

fn scan_set(set: &BTreeSet<Box<[u8]>>, keep: impl Fn(&str) -> bool) -> Vec<String> {
    set.iter()
        .map(|k| String::from_utf8_lossy(k))
        .filter(|p| keep(p))
        .map(|p| p.into_owned())
        .collect()
}

/// How well a pattern narrows a walk from its start: whether it begins
/// with a literal, then how many literals come before its first `*`.
fn anchor(pattern: &[u8]) -> (bool, usize) {
    let head = pattern.split(|&b| b == b'*').next().unwrap_or(&[]);
    (
        head.first().is_some_and(|&b| b != b'?'),
        head.iter().filter(|&&b| b != b'?').count(),
    )
}

/// A prefix automaton over key bytes.
trait Automaton {
    type State;
    fn start(&self) -> Self::State;
    /// The state after `byte`, or `None` when no key continuing this way
    /// can be accepted.
    fn step(&self, state: &Self::State, byte: u8) -> Option<Self::State>;
    fn accepts(&self, state: &Self::State) -> bool;
}

/// Calls `emit` with every key of `set` that `automaton` accepts, in order,
/// skipping the range below each prefix it rejects.
fn walk<A: Automaton>(set: &BTreeSet<Box<[u8]>>, automaton: &A, mut emit: impl FnMut(&[u8])) {
    /// Keys read in order past a rejected prefix before seeking: deep in
    /// the trie a rejected prefix holds a key or two, and reading on is
    /// cheaper than a new descent.
    const READ_ON: usize = 4;
    // states[i]: the state after the first i bytes of `prev`.
    let mut states = vec![automaton.start()];
    let mut prev: &[u8] = &[];
    let mut seek: Vec<u8> = Vec::new();
    let mut keys = set.range::<[u8], _>(..);
    let mut pending: Option<&[u8]> = None;
    while let Some(key) = pending.take().or_else(|| keys.next().map(|k| &k[..])) {
        let common = prev
            .iter()
            .zip(key)
            .take_while(|(a, b)| a == b)
            .count()
            .min(states.len() - 1);
        states.truncate(common + 1);
        let mut rejected = None;
        for (i, &byte) in key.iter().enumerate().skip(common) {
            match automaton.step(&states[i], byte) {
                Some(s) => states.push(s),
                None => {
                    rejected = Some(i);
                    break;
                }
            }
        }
        prev = key;
        let Some(i) = rejected else {
            if automaton.accepts(&states[key.len()]) {
                emit(key);
            }
            continue;
        };
        // Skip every key starting with key[..=i].
        let prefix = &key[..=i];
        for _ in 0..READ_ON {
            match keys.next() {
                Some(k) if k.starts_with(prefix) => {}
                Some(k) => {
                    pending = Some(k);
                    break;
                }
                None => return,
            }
        }
        if pending.is_some() {
            continue;
        }
        seek.clear();
        seek.extend_from_slice(prefix);
        while let Some(last) = seek.pop() {
            if last < u8::MAX {
                seek.push(last + 1);
                break;
            }
        }
        if seek.is_empty() {
            return;
        }
        keys = set.range::<[u8], _>((Bound::Included(&seek[..]), Bound::Unbounded));
    }
}

/// Substitution costs between bytes below 128, as [`plate_distance`]
/// gives them for one-character plates.
fn substitution_costs() -> &'static [[f32; 128]; 128] {
    static COSTS: OnceLock<Box<[[f32; 128]; 128]>> = OnceLock::new();
    COSTS.get_or_init(|| {
        let mut costs = Box::new([[1.0_f32; 128]; 128]);
        let chars: Vec<u8> = (b'0'..=b'9').chain(b'A'..=b'Z').collect();
        for (a, row) in costs.iter_mut().enumerate() {
            row[a] = 0.0;
        }
        for &a in &chars {
            for &b in &chars {
                let (sa, sb) = (char::from(a).to_string(), char::from(b).to_string());
                costs[usize::from(a)][usize::from(b)] = plate_distance(&sa, &sb);
            }
        }
        costs
    })
}

/// The weighted edit distance's dynamic programme, one row per key byte,
/// over the plates of `length` characters.
struct Fuzzy<'a> {
    query: &'a [u8],
    length: usize,
    limit: f32,
    costs: &'a [[f32; 128]; 128],
}

impl Fuzzy<'_> {
    fn cost(&self, a: u8, b: u8) -> f32 {
        if a == b {
            0.0
        } else if a < 128 && b < 128 {
            self.costs[usize::from(a)][usize::from(b)]
        } else {
            1.0
        }
    }
}

/// The key bytes consumed, and in `row[j]` the distance between them and
/// `query[..j]`.
#[derive(Clone, Copy)]
struct Row {
    depth: usize,
    row: [f32; MAX_FUZZY_QUERY + 1],
}

impl Automaton for Fuzzy<'_> {
    type State = Row;

    fn start(&self) -> Row {
        let mut row = [0.0; MAX_FUZZY_QUERY + 1];
        for (j, v) in row.iter_mut().enumerate().take(self.query.len() + 1) {
            *v = j as f32;
        }
        Row { depth: 0, row }
    }

    fn step(&self, state: &Row, byte: u8) -> Option<Row> {
        let (row, depth) = (&state.row, state.depth + 1);
        // The key has `rest` bytes after this one; matching them against
        // `query[j..]` costs at least the difference in length.
        let rest = self.length.saturating_sub(depth) as f32;
        let tail = |j: usize| (rest - (self.query.len() - j) as f32).abs();
        let mut next = [0.0; MAX_FUZZY_QUERY + 1];
        next[0] = row[0] + 1.0;
        let mut best = next[0] + tail(0);
        for (j, &q) in self.query.iter().enumerate() {
            let v = (row[j] + self.cost(byte, q))
                .min(row[j + 1] + 1.0)
                .min(next[j] + 1.0);
            next[j + 1] = v;
            best = best.min(v + tail(j + 1));
        }
        (best <= self.limit).then_some(Row { depth, row: next })
    }

    fn accepts(&self, state: &Row) -> bool {
        state.depth == self.length && state.row[self.query.len()] <= self.limit
    }
}

/// A `?`/`*` pattern as the set of pattern positions reached.
struct Wildcard<'a> {
    pattern: &'a [u8],
}

impl<'a> Wildcard<'a> {
    fn new(pattern: &'a [u8]) -> Self {
        debug_assert!(pattern.len() < 32);
        Wildcard { pattern }
    }

    /// Adds the positions after each reached `*` (a star may match nothing).
    fn closure(&self, mut set: u32) -> u32 {
        for (i, &p) in self.pattern.iter().enumerate() {
            if p == b'*' && set & (1 << i) != 0 {
                set |= 1 << (i + 1);
            }
        }
        set
    }
}

impl Automaton for Wildcard<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.closure(1)
    }

    fn step(&self, &set: &u32, byte: u8) -> Option<u32> {
        let mut next = 0;
        for (i, &p) in self.pattern.iter().enumerate() {
            if set & (1 << i) == 0 {
                continue;
            }
            match p {
                b'*' => next |= 1 << i,
                b'?' => next |= 1 << (i + 1),
                _ if p == byte => next |= 1 << (i + 1),
                _ => {}
            }
        }
        let next = self.closure(next);
        (next != 0).then_some(next)
    }

    fn accepts(&self, &set: &u32) -> bool {
        set & (1 << self.pattern.len()) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const DIGITS: &[u8] = b"0123456789";
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const ALL: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    /// The look-alike groups, and characters confused with them.
    const LOOKALIKES: [&[u8]; 7] = [b"0ODQ", b"1IL7", b"2Z", b"5S", b"8B", b"6G", b"4A"];

    fn pick(rng: &mut StdRng, from: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(from[rng.gen_range(0..from.len())]))
            .collect()
    }

    /// A plate in one of the Kazakhstan formats, or a random string.
    fn random_plate(rng: &mut StdRng) -> String {
        let region = format!("{:02}", rng.gen_range(1..=20));
        match rng.gen_range(0..10) {
            0..=5 => format!("{}{}{region}", pick(rng, DIGITS, 3), pick(rng, LETTERS, 3)),
            6 => format!("{}{}{region}", pick(rng, DIGITS, 3), pick(rng, LETTERS, 2)),
            7 => format!(
                "{}{}{}",
                pick(rng, LETTERS, 1),
                pick(rng, DIGITS, 3),
                pick(rng, LETTERS, 3)
            ),
            _ => {
                let n = rng.gen_range(1..=10);
                pick(rng, ALL, n)
            }
        }
    }

    /// `plate` with up to `edits` random edits, look-alike swaps most often.
    fn mutate(rng: &mut StdRng, plate: &str, edits: usize) -> String {
        let mut p: Vec<u8> = plate.bytes().collect();
        for _ in 0..edits {
            let at = rng.gen_range(0..=p.len());
            match rng.gen_range(0..5) {
                0 | 1 if at < p.len() => {
                    if let Some(g) = LOOKALIKES.iter().find(|g| g.contains(&p[at])) {
                        p[at] = g[rng.gen_range(0..g.len())];
                    }
                }
                2 if at < p.len() => p[at] = ALL[rng.gen_range(0..ALL.len())],
                3 if at < p.len() => {
                    p.remove(at);
                }
                _ => p.insert(at, ALL[rng.gen_range(0..ALL.len())]),
            }
        }
        if p.is_empty() {
            p.push(b'A');
        }
        String::from_utf8(p).unwrap()
    }

    /// Plates crowded around a few seeds, so that every distance from 0 to
    /// beyond 2 occurs, and random ones.
    fn plates(rng: &mut StdRng, n: usize) -> Vec<String> {
        let seeds: Vec<String> = (0..20).map(|_| random_plate(rng)).collect();
        let mut out: Vec<String> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    let seed = &seeds[rng.gen_range(0..seeds.len())];
                    let edits = rng.gen_range(0..5);
                    mutate(rng, seed, edits)
                } else {
                    random_plate(rng)
                }
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn fuzzy(plate: &str, max_distance: f32) -> PlateQuery {
        PlateQuery::Fuzzy {
            plate: plate.to_owned(),
            max_distance,
        }
    }

    #[test]
    fn fuzzy_finds_exactly_what_a_scan_finds() {
        let mut rng = StdRng::seed_from_u64(7);
        let all = plates(&mut rng, 20_000);
        let index = PlateIndex::new(&all);
        assert_eq!(index.len(), all.len());
        let mut found = [0usize; 5];
        for round in 0..500 {
            let query = if round % 3 == 0 {
                random_plate(&mut rng)
            } else {
                let base = all[rng.gen_range(0..all.len())].clone();
                let edits = rng.gen_range(0..4);
                mutate(&mut rng, &base, edits)
            };
            for d in [0.0, 0.5, 1.0, 1.5, 2.0] {
                let q = fuzzy(&query, d);
                let expected = PlateIndex::scan(all.iter().map(String::as_str), &q);
                assert_eq!(index.matching(&q), expected, "{query} within {d}");
                found[(d * 2.0) as usize] += expected.len();
            }
        }
        // The queries reach plates at every distance tried.
        assert!(found.windows(2).all(|w| w[0] < w[1]), "{found:?}");
    }

    #[test]
    fn fuzzy_boundaries_at_distances_0_1_and_2() {
        let index = PlateIndex::new([
            "123ABC02",  // the plate
            "I23ABC02",  // 1 -> I: 0.5
            "I23A8C02",  // two look-alikes: 1
            "I23A8CO2",  // three: 1.5
            "I2EA8CO2",  // three and one other: 2.5
            "123XBC02",  // one other: 1
            "123XYC02",  // two others: 2
            "123XYZ02",  // three others: 3
            "12ABC02",   // one deletion: 1
            "1234ABC02", // one insertion: 1
            "1ABC02",    // two deletions: 2
            "23ABC0",    // two deletions: 2
            "3ABC0",     // three deletions: 3
            "O23A8CO2",  // 1 -> O is not a look-alike: 1 + 0.5 * 2 = 2
        ]);
        let within = |d: f32| index.fuzzy("123ABC02", d);
        assert_eq!(within(0.0), ["123ABC02"]);
        assert_eq!(within(0.5), ["123ABC02", "I23ABC02"]);
        assert_eq!(
            within(1.0),
            sorted(
                [
                    "123ABC02",
                    "1234ABC02",
                    "123XBC02",
                    "12ABC02",
                    "I23A8C02",
                    "I23ABC02"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        let two = within(2.0);
        for p in ["123XYC02", "1ABC02", "23ABC0", "O23A8CO2", "I23A8CO2"] {
            assert!(two.iter().any(|t| t == p), "{p} within 2: {two:?}");
        }
        for p in ["I2EA8CO2", "123XYZ02", "3ABC0"] {
            assert!(!two.iter().any(|t| t == p), "{p} not within 2: {two:?}");
        }
        assert!(within(1.5).iter().any(|t| t == "I23A8CO2"));
        assert!(!within(1.4).iter().any(|t| t == "I23A8CO2"));
    }

    #[test]
    fn every_look_alike_swap_costs_half() {
        for group in LOOKALIKES {
            for &a in group {
                for &b in group {
                    let (a, b) = (char::from(a), char::from(b));
                    let plate = format!("12{a}ABC02");
                    let index = PlateIndex::new([plate.as_str()]);
                    let query = format!("12{b}ABC02");
                    let expect_half = a != b;
                    assert_eq!(
                        index.fuzzy(&query, 0.5),
                        std::slice::from_ref(&plate),
                        "{a}/{b}"
                    );
                    assert_eq!(index.fuzzy(&query, 0.0).is_empty(), expect_half, "{a}/{b}");
                }
            }
        }
    }

    #[test]
    fn wildcards_find_exactly_what_a_scan_finds() {
        let mut rng = StdRng::seed_from_u64(11);
        let all = plates(&mut rng, 20_000);
        let index = PlateIndex::new(&all);
        let fixed = [
            "123*", "*02", "???ABC02", "*A*", "*", "?", "??", "*??", "1*2", "A???BCD", "*7?",
            "?2*", "**B**", "123ABC02",
        ];
        let mut queries: Vec<String> = fixed.iter().map(|s| (*s).to_owned()).collect();
        for _ in 0..1_500 {
            // A plate with some characters turned into wildcards.
            let base = all[rng.gen_range(0..all.len())].clone();
            let mut p: Vec<u8> = base.into_bytes();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..p.len());
                match rng.gen_range(0..3) {
                    0 => p[at] = b'?',
                    1 => p[at] = b'*',
                    _ => {
                        let end = rng.gen_range(at..=p.len());
                        p.splice(at..end, [b'*']);
                    }
                }
            }
            queries.push(String::from_utf8(p).unwrap());
        }
        let mut hits = 0;
        for text in &queries {
            let pattern = PlatePattern::parse(text).unwrap();
            let q = PlateQuery::Wildcard(pattern);
            let expected = PlateIndex::scan(all.iter().map(String::as_str), &q);
            hits += expected.len();
            assert_eq!(index.matching(&q), expected, "{text}");
        }
        assert!(hits > queries.len(), "{hits}");
    }

    #[test]
    fn exact_lookup_and_updates() {
        let index = PlateIndex::new(["123ABC02", "777KXM17"]);
        assert!(index.contains("123ABC02"));
        assert!(!index.contains("123ABC2"));
        let exact = PlateQuery::Exact("777KXM17".into());
        assert_eq!(index.matching(&exact), ["777KXM17"]);
        assert!(index.matching(&PlateQuery::Any).is_empty());

        index.apply(&["555XYZ05"], &["777KXM17"]);
        assert!(index.matching(&exact).is_empty());
        assert_eq!(index.fuzzy("555XY205", 0.5), ["555XYZ05"]);
        let pattern = PlateQuery::Wildcard(PlatePattern::parse("*05").unwrap());
        assert_eq!(index.matching(&pattern), ["555XYZ05"]);
        assert_eq!(index.len(), 2);

        // A failed commit changes nothing.
        let failed = index.commit_with(&["111AAA01"], &["123ABC02"], || {
            Err::<(), _>(crate::error::Error::Corrupt("no".into()))
        });
        assert!(failed.is_err());
        assert!(index.contains("123ABC02") && !index.contains("111AAA01"));
        index
            .commit_with(&["111AAA01"], &["123ABC02"], || Ok(()))
            .unwrap();
        assert!(!index.contains("123ABC02") && index.contains("111AAA01"));

        // Plates short enough to be packed, and longer ones; a prefix or an
        // extension of a plate is another plate.
        let long = "ABCDEFGHIJKLMNOPQ";
        for p in ["A", "123456789012345", "1234567890123456", long] {
            assert!(!index.contains(p), "{p}");
            index.apply(&[p], &[] as &[&str]);
            assert!(index.contains(p), "{p}");
        }
        assert!(!index.contains("12345678901234") && !index.contains("AB"));
        assert!(!index.contains(&long[..16]) && !index.contains(&format!("{long}R")));
        index.apply(&[] as &[&str], &["A", long]);
        assert!(!index.contains("A") && !index.contains(long));
        assert!(index.contains("123456789012345") && index.contains("1234567890123456"));
    }

    #[test]
    fn random_updates_keep_the_index_equal_to_a_fresh_one() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut all: BTreeSet<String> = plates(&mut rng, 2_000).into_iter().collect();
        let index = PlateIndex::new(&all);
        for _ in 0..200 {
            let added: Vec<String> = (0..rng.gen_range(0..20))
                .map(|_| random_plate(&mut rng))
                .collect();
            let removed: Vec<String> = all
                .iter()
                .filter(|_| rng.gen_range(0..100) == 0)
                .cloned()
                .collect();
            index.apply(&[] as &[&str], &removed);
            index.apply(&added, &[] as &[&str]);
            for p in &removed {
                all.remove(p);
            }
            all.extend(added);
            let query = random_plate(&mut rng);
            let q = fuzzy(&query, 2.0);
            assert_eq!(
                index.matching(&q),
                PlateIndex::scan(all.iter().map(String::as_str), &q)
            );
        }
        let fresh = PlateIndex::new(&all);
        let flat = |sets: &[BTreeSet<Box<[u8]>>]| -> Vec<Box<[u8]>> {
            sets.iter().flatten().cloned().collect()
        };
        let (a, b) = (index.read(), fresh.read());
        assert_eq!(a.len, b.len);
        assert_eq!(flat(&a.forward), flat(&b.forward));
        assert_eq!(flat(&a.reverse), flat(&b.reverse));
    }

    fn quantiles(mut times: Vec<std::time::Duration>) -> (f64, f64) {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        (at(0.50).as_secs_f64() * 1e3, at(0.99).as_secs_f64() * 1e3)
    }

    /// Query latency for a million random plates, index against a scan of
    /// every plate. A measurement, not a test:
    ///
    /// `cargo test --release -p safecity-server --lib plate_index::tests::measure -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn measure() {
        use std::time::Instant;
        let mut rng = StdRng::seed_from_u64(1);
        let n: usize = std::env::var("PLATES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let mut all: Vec<String> = (0..n).map(|_| random_plate(&mut rng)).collect();
        all.sort();
        all.dedup();
        let started = Instant::now();
        let index = PlateIndex::new(&all);
        println!(
            "{} distinct plates, index built in {:.2} s",
            all.len(),
            started.elapsed().as_secs_f64()
        );
        let (index_queries, scan_queries) = (200, 20);
        type Make<'a> = Box<dyn Fn(&mut StdRng) -> PlateQuery + 'a>;
        let kinds: [(&str, Make<'_>); 5] = [
            (
                "exact",
                Box::new(|rng: &mut StdRng| {
                    PlateQuery::Exact(all[rng.gen_range(0..all.len())].clone())
                }),
            ),
            (
                "wildcard 12?AB*",
                Box::new(|rng: &mut StdRng| {
                    let p = &all[rng.gen_range(0..all.len())];
                    let text = format!("{}?{}*", &p[..2.min(p.len())], p.get(3..5).unwrap_or(""));
                    PlateQuery::Wildcard(PlatePattern::parse(&text).unwrap())
                }),
            ),
            (
                "wildcard ???ABC02 / *C02",
                Box::new(|rng: &mut StdRng| {
                    let p = &all[rng.gen_range(0..all.len())];
                    let text = if rng.gen_bool(0.5) && p.len() > 3 {
                        format!("???{}", &p[3..])
                    } else {
                        format!("*{}", &p[p.len().saturating_sub(3)..])
                    };
                    PlateQuery::Wildcard(PlatePattern::parse(&text).unwrap())
                }),
            ),
            (
                "fuzzy d=1",
                Box::new(|rng: &mut StdRng| {
                    let p = all[rng.gen_range(0..all.len())].clone();
                    let q = mutate(rng, &p, 1);
                    fuzzy(&q, 1.0)
                }),
            ),
            (
                "fuzzy d=2",
                Box::new(|rng: &mut StdRng| {
                    let p = all[rng.gen_range(0..all.len())].clone();
                    let q = mutate(rng, &p, 2);
                    fuzzy(&q, 2.0)
                }),
            ),
        ];
        println!(
            "{:<26} {:>12} {:>12} {:>12} {:>12} {:>10}",
            "query", "index p50", "index p99", "scan p50", "scan p99", "matches"
        );
        for (name, make) in &kinds {
            let mut times = Vec::new();
            let mut matches = 0;
            let mut queries = Vec::new();
            for _ in 0..index_queries {
                queries.push(make(&mut rng));
            }
            for q in &queries {
                let t = Instant::now();
                let found = index.matching(q);
                times.push(t.elapsed());
                matches += found.len();
            }
            let (ip50, ip99) = quantiles(times);
            let mut times = Vec::new();
            for q in queries.iter().take(scan_queries) {
                let t = Instant::now();
                let found = PlateIndex::scan(all.iter().map(String::as_str), q);
                times.push(t.elapsed());
                assert_eq!(found, index.matching(q));
            }
            let (sp50, sp99) = quantiles(times);
            println!(
                "{name:<26} {ip50:>9.3} ms {ip99:>9.3} ms {sp50:>9.1} ms {sp99:>9.1} ms {:>10.1}",
                matches as f64 / index_queries as f64
            );
        }
    }
}
