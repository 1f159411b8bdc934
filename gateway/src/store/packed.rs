//! [`Packed`]: a list of byte strings kept in one buffer, written to as redis-rs writes
//! command arguments.
//!
//! Why: a script call of the hot path (ingest, recording an outcome) has about twenty
//! keys and arguments. Kept as a `Vec<Vec<u8>>` (what redis-rs's `RedisWrite` offers),
//! each was an allocation of its own, and the list grew by doubling: some forty
//! allocations per event, a tenth of the gateway's, each paid again in cache misses when
//! another thread frees it. Packed, a call's keys are two allocations and its arguments
//! two.

use std::fmt;
use std::io;

use redis::RedisWrite;

/// Byte strings one after the other in one buffer.
#[derive(Debug, Default)]
pub struct Packed {
    bytes: Vec<u8>,
    /// Where each string ends in `bytes`.
    ends: Vec<usize>,
}

impl Packed {
    /// Room for `count` strings of `bytes` bytes in all, without growing.
    pub fn with_capacity(count: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(count),
        }
    }

    /// How many strings it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// How many bytes its strings hold in all.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends one string.
    pub fn push(&mut self, item: &[u8]) {
        self.bytes.extend_from_slice(item);
        self.end_item();
    }

    /// The strings in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.bytes[start..end])
    }

    /// Ends the string being written at the end of the buffer.
    fn end_item(&mut self) {
        self.ends.push(self.bytes.len());
    }
}

impl RedisWrite for Packed {
    fn write_arg(&mut self, arg: &[u8]) {
        self.push(arg);
    }

    fn write_arg_fmt(&mut self, arg: impl fmt::Display) {
        use std::io::Write as _;
        // Writing into a Vec fails only if `arg`'s Display does, which the numbers and
        // strings of the gateway's calls never do (redis-rs's own `Cmd` panics then).
        let _ = write!(self.bytes, "{arg}");
        self.end_item();
    }

    fn writer_for_next_arg(&mut self) -> impl io::Write + '_ {
        NextItem(self)
    }

    fn reserve_space_for_args(&mut self, additional: impl IntoIterator<Item = usize>) {
        let (count, bytes) = additional
            .into_iter()
            .fold((0, 0), |(n, total), len| (n + 1, total + len));
        self.ends.reserve(count);
        self.bytes.reserve(bytes);
    }
}

/// Writes one string at the end of a [`Packed`]; the string ends when this is dropped.
struct NextItem<'a>(&'a mut Packed);

impl io::Write for NextItem<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for NextItem<'_> {
    fn drop(&mut self) {
        self.0.end_item();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::ToRedisArgs;

    /// What redis-rs itself writes for `value`: one `Vec<u8>` per argument.
    fn as_redis_writes_it<T: ToRedisArgs>(value: T) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        value.write_redis_args(&mut out);
        out
    }

    fn packed<T: ToRedisArgs>(value: T) -> Vec<Vec<u8>> {
        let mut p = Packed::default();
        value.write_redis_args(&mut p);
        p.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn holds_what_redis_rs_writes_for_each_kind_of_argument() {
        assert_eq!(packed("text"), as_redis_writes_it("text"));
        assert_eq!(packed(String::new()), as_redis_writes_it(String::new()));
        assert_eq!(packed(42u64), as_redis_writes_it(42u64));
        assert_eq!(packed(-7i64), as_redis_writes_it(-7i64));
        assert_eq!(packed(1.5f64), as_redis_writes_it(1.5f64));
        assert_eq!(packed(usize::MAX), as_redis_writes_it(usize::MAX));
        assert_eq!(
            packed(&b"\x00bytes"[..]),
            as_redis_writes_it(&b"\x00bytes"[..])
        );
        let list = vec!["a", "", "bc"];
        assert_eq!(packed(list.clone()).len(), 3);
        assert_eq!(packed(list.clone()), as_redis_writes_it(list));
    }

    #[test]
    fn strings_keep_their_order_and_bounds() {
        let mut p = Packed::with_capacity(2, 8);
        assert_eq!(p.len(), 0);
        p.push(b"");
        p.push(b"key:1");
        p.write_arg_fmt(12);
        {
            use std::io::Write as _;
            let mut w = p.writer_for_next_arg();
            w.write_all(b"in ").unwrap();
            w.write_all(b"two").unwrap();
        }
        drop(p.writer_for_next_arg()); // an empty string
        let items: Vec<&[u8]> = p.iter().collect();
        assert_eq!(items, [&b""[..], b"key:1", b"12", b"in two", b""], "{p:?}");
        assert_eq!(p.len(), 5);
        assert_eq!(p.byte_len(), "key:112in two".len());
    }
}
