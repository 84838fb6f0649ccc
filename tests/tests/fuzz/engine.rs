//! The fuzzing engine: inputs made from real seed files by structure-aware mutations, run
//! through a parser under a panic catcher, a time limit and an allocation bound, with
//! proptest's seeded runner (the same inputs every run) and its shrinking (a failure is
//! reported as the smallest input that still fails, and written out for a regression test).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use super::alloc;

/// What a parser may do with an input: accept it (`Ok(true)`) or refuse it with a message that
/// names the file (`Ok(false)`); anything else (a panic, an error that does not name the file, a
/// wrong result, an allocation or a time out of proportion) is a finding (`Err`).
pub type Check = Box<dyn Fn(&[u8]) -> Result<bool, String> + Send + Sync>;

/// One parser under test.
pub struct Target {
    /// Its name: also the folder of its regression inputs under `tests/fixtures/fuzz/`.
    pub name: &'static str,
    /// Real inputs to mutate, each with the offsets where its header's fields end (where
    /// truncations are most interesting).
    pub seeds: Vec<(Vec<u8>, Vec<usize>)>,
    /// Bytes the parser may allocate beyond a fixed allowance, per input byte.
    pub alloc_per_byte: usize,
    /// Accept, refuse with a good message, or report what went wrong.
    pub check: Check,
}

/// A fixed allowance every input may allocate (a model, buffers, a JSON tree).
pub const ALLOC_ALLOWANCE: usize = 64 << 20;
/// The most time one input may take.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// One change to an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit.
    FlipBit(Index, u8),
    /// Overwrite a byte.
    SetByte(Index, u8),
    /// Cut the input at a header boundary of its seed.
    TruncateAtField(Index),
    /// Cut the input anywhere.
    Truncate(Index),
    /// Remove a range.
    Delete(Index, u16),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Write an interesting integer (0, 1, huge, the input's length ± 1, …) as 4 or 8 bytes,
    /// either byte order: declared sizes, counts and offsets.
    Word(Index, Index, bool, bool),
    /// Write a NaN, +inf or -inf as an f32 (little-endian) at an aligned offset.
    NonFinite(Index, u8),
    /// Repeat a range in place.
    Duplicate(Index, u16),
}

fn interesting(len: usize) -> [u64; 16] {
    [
        0,
        1,
        2,
        0x7f,
        0x80,
        0xff,
        0xffff,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        1 << 40,
        u64::MAX,
        u64::MAX / 2,
        len as u64,
        len as u64 + 1,
        (len as u64).saturating_sub(1),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        2 => any::<Index>().prop_map(Mutation::TruncateAtField),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1u16..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        3 => (any::<Index>(), any::<Index>(), any::<bool>(), any::<bool>())
            .prop_map(|(i, v, wide, be)| Mutation::Word(i, v, wide, be)),
        1 => (any::<Index>(), 0u8..3).prop_map(|(i, k)| Mutation::NonFinite(i, k)),
        1 => (any::<Index>(), 1u16..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

/// Apply `m` to `bytes`, whose seed has header fields ending at `fields`.
pub fn apply(bytes: &mut Vec<u8>, fields: &[usize], m: &Mutation) {
    let len = bytes.len();
    let at = |i: &Index| if len == 0 { 0 } else { i.index(len) };
    match m {
        Mutation::FlipBit(i, b) if len > 0 => bytes[at(i)] ^= 1 << b,
        Mutation::SetByte(i, v) if len > 0 => bytes[at(i)] = *v,
        Mutation::TruncateAtField(i) if !fields.is_empty() => {
            bytes.truncate(fields[i.index(fields.len())].min(len));
        }
        Mutation::Truncate(i) => bytes.truncate(at(i)),
        Mutation::Delete(i, n) if len > 0 => {
            let s = at(i);
            bytes.drain(s..(s + *n as usize).min(len));
        }
        Mutation::Insert(i, b) => {
            let s = if len == 0 { 0 } else { i.index(len + 1) };
            bytes.splice(s..s, b.iter().copied());
        }
        Mutation::Word(i, v, wide, be) => {
            let w = if *wide { 8 } else { 4 };
            if len >= w {
                let s = i.index(len - w + 1);
                let vals = interesting(len);
                let x = vals[v.index(vals.len())];
                let b: Vec<u8> = match (wide, be) {
                    (true, true) => x.to_be_bytes().to_vec(),
                    (true, false) => x.to_le_bytes().to_vec(),
                    (false, true) => (x as u32).to_be_bytes().to_vec(),
                    (false, false) => (x as u32).to_le_bytes().to_vec(),
                };
                bytes[s..s + w].copy_from_slice(&b);
            }
        }
        Mutation::NonFinite(i, k) if len >= 4 => {
            let s = i.index(len / 4) * 4;
            let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][*k as usize % 3];
            bytes[s..s + 4].copy_from_slice(&v.to_le_bytes());
        }
        Mutation::Duplicate(i, n) if len > 0 => {
            let s = at(i);
            let e = (s + *n as usize).min(len);
            let chunk = bytes[s..e].to_vec();
            bytes.splice(e..e, chunk);
        }
        _ => {}
    }
}

/// Inputs per target: `FILTERLAB_FUZZ_CASES`, or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("FILTERLAB_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The seed of every campaign: `FILTERLAB_FUZZ_SEED`, or a fixed one.
fn seed() -> u64 {
    std::env::var("FILTERLAB_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f11e)
}

/// The input each thread is running and since when, for the watchdog.
type Running = std::collections::HashMap<std::thread::ThreadId, (&'static str, Instant, Vec<u8>)>;

fn running() -> &'static std::sync::Mutex<Running> {
    static RUNNING: std::sync::OnceLock<std::sync::Mutex<Running>> = std::sync::OnceLock::new();
    RUNNING.get_or_init(|| {
        // A parser that never returns cannot fail its test: the watchdog ends the process,
        // naming the target and saving the input.
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let hung = running()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .find(|(_, t0, _)| t0.elapsed() > HANG)
                    .map(|(name, _, input)| (*name, input.clone()));
                if let Some((name, input)) = hung {
                    let path = save_finding(name, &input);
                    eprintln!(
                        "fuzz {name}: an input ran for over {} s (hung); saved as {}",
                        HANG.as_secs(),
                        path.display()
                    );
                    std::process::abort();
                }
            }
        });
        std::sync::Mutex::new(Running::new())
    })
}

/// How long one input may run before the watchdog ends the process.
const HANG: Duration = Duration::from_secs(120);

/// Run one input through `t`: its check's verdict, or what went wrong around it.
pub fn run_one(t: &Target, input: &[u8]) -> Result<bool, String> {
    let me = std::thread::current().id();
    running()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(me, (t.name, Instant::now(), input.to_vec()));
    let verdict = run_checked(t, input);
    running()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&me);
    verdict
}

fn run_checked(t: &Target, input: &[u8]) -> Result<bool, String> {
    let base = alloc::live();
    alloc::reset();
    let t0 = Instant::now();
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| (t.check)(input)));
    let took = t0.elapsed();
    let (peak, largest) = alloc::measured(base);
    let out = out.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {msg}"))
    });
    let accepted = out?;
    let bound = ALLOC_ALLOWANCE + t.alloc_per_byte * input.len();
    if peak > bound || largest > bound {
        return Err(format!(
            "allocated {peak} bytes at the peak (largest request {largest}) for a {}-byte input; \
             the bound is {bound}",
            input.len()
        ));
    }
    if took > TIME_LIMIT {
        return Err(format!(
            "took {:.1} s for a {}-byte input",
            took.as_secs_f64(),
            input.len()
        ));
    }
    Ok(accepted)
}

/// Fuzz `t` with `n` inputs. A finding panics with the smallest failing input, after writing it
/// to `target/fuzz-findings/<target>/` for a regression test.
pub fn fuzz(t: &Target, n: u32) {
    assert!(!t.seeds.is_empty(), "{}: no seed inputs", t.name);
    // The real file itself must be accepted, or the campaign would only ever see refusals.
    assert_eq!(
        run_one(t, &t.seeds[0].0),
        Ok(true),
        "{}: the unchanged seed input is not accepted",
        t.name
    );
    let config = Config {
        cases: n,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed().to_le_bytes());
    key[8..16].copy_from_slice(&(t.name.len() as u64).to_le_bytes());
    for (k, b) in key[16..].iter_mut().zip(t.name.bytes()) {
        *k = b;
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (any::<Index>(), prop::collection::vec(mutation(), 0..4));
    let t0 = Instant::now();
    let accepted = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&strategy, |(which, muts)| {
        let (seed, fields) = &t.seeds[which.index(t.seeds.len())];
        let mut input = seed.clone();
        for m in &muts {
            apply(&mut input, fields, m);
        }
        match run_one(t, &input) {
            Ok(accept) => {
                if accept {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                save_finding(t.name, &input);
                Err(TestCaseError::fail(e))
            }
        }
    });
    let seconds = t0.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            eprintln!(
                "fuzz {}: {n} inputs in {seconds:.1} s ({} accepted, the rest refused with an \
                 error naming the file), no finding",
                t.name,
                accepted.into_inner()
            );
        }
        Err(TestError::Fail(why, (which, muts))) => {
            let (seed, fields) = &t.seeds[which.index(t.seeds.len())];
            let mut input = seed.clone();
            for m in &muts {
                apply(&mut input, fields, m);
            }
            let path = save_finding(t.name, &input);
            panic!(
                "fuzz {}: {why}\n  smallest failing input ({} bytes): {}\n  mutations: {muts:?}",
                t.name,
                input.len(),
                path.display()
            );
        }
        Err(e) => panic!("fuzz {}: {e}", t.name),
    }
}

/// Write a failing input to `target/fuzz-findings/<target>/<hash>` and return its path.
fn save_finding(target: &str, input: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/fuzz-findings")
        .join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{:016x}", h.finish()));
    let _ = std::fs::write(&path, input);
    path
}

/// The regression inputs of `t`: `tests/fixtures/fuzz/<name>/*`, each replayed through its
/// check.
pub fn replay(t: &Target) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(t.name);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in files
        .into_iter()
        .filter(|f| f.extension().is_none_or(|e| e != "md"))
    {
        let input = std::fs::read(&f).unwrap();
        if let Err(e) = run_one(t, &input) {
            panic!("regression {}: {e}", f.display());
        }
        n += 1;
    }
    n
}
