//! A fixed-size log-linear histogram of nanosecond latencies: values below 128 are exact,
//! larger ones fall in one of 128 buckets per power of two (under 0.8 % error), so memory
//! stays bounded (about 58 KiB) however long the run.

/// Sub-buckets per power of two, as bits.
const SUB_BITS: u32 = 7;
/// Sub-buckets per power of two.
const SUB: usize = 1 << SUB_BITS;
/// Group 0 holds 0..128 exactly; groups 1..=57 hold exponents 7..=63.
const BUCKETS: usize = SUB * (64 - SUB_BITS as usize + 1);

/// Latency histogram with exact count, min and max.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let group = (shift + 1) as usize;
    let sub = ((v >> shift) as usize) - SUB; // top 8 bits, minus the leading one
    group * SUB + sub
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i / SUB - 1) as u32;
    let low = ((SUB + i % SUB) as u64) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }

    /// Adds one value.
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
            self.total += 1;
            self.max = self.max.max(v);
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.max = 0;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (exact), `None` when empty.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// The value at quantile `q` (0.0 ..= 1.0): the smallest bucket whose cumulative count
    /// reaches `ceil(q × count)`; never above the exact maximum. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(value(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// [`quantile`](Self::quantile) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.quantile(q).map(|ns| ns as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_single() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.max(), None);
        h.record(5);
        assert_eq!(h.quantile(0.0), Some(5));
        assert_eq!(h.quantile(0.99), Some(5));
        h.record(1_000_003);
        assert_eq!(h.max(), Some(1_000_003));
        assert_eq!(h.quantile(1.0), Some(1_000_003));
        assert_eq!(h.quantile(0.5), Some(5));
    }

    #[test]
    fn percentiles_of_uniform_values() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let near = |got: Option<u64>, want: f64| {
            let got = got.unwrap() as f64;
            assert!((got - want).abs() / want < 0.01, "{got} vs {want}");
        };
        near(h.quantile(0.5), 5_000_000.0);
        near(h.quantile(0.99), 9_900_000.0);
        near(h.quantile(0.999), 9_990_000.0);
        assert_eq!(h.count(), 10_000);
        assert!((h.quantile_ms(0.5).unwrap() - 5.0).abs() < 0.05);
    }

    #[test]
    fn buckets_cover_every_u64() {
        for v in [
            0,
            1,
            127,
            128,
            129,
            255,
            256,
            1 << 20,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let i = index(v);
            assert!(i < BUCKETS, "{v}");
            let mid = value(i) as f64;
            assert!(
                (mid - v as f64).abs() <= v as f64 / 128.0 + 0.5,
                "{v} -> {mid}"
            );
        }
        // Monotone: a larger value never lands in an earlier bucket.
        let mut last = 0;
        for v in (0..100_000u64).map(|x| x * 37) {
            assert!(index(v) >= last);
            last = index(v);
        }
    }

    #[test]
    fn merge_and_reset() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(10);
        b.record(20);
        b.record(30);
        a.merge(&b);
        assert_eq!((a.count(), a.max()), (3, Some(30)));
        assert_eq!(a.quantile(0.5), Some(20));
        a.reset();
        assert_eq!(a.count(), 0);
    }
}
