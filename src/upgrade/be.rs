//! Bounds-checked big-endian field reads for the foreign formats (RocketMQ and DLedger
//! are both big-endian). Every read returns `None` past the end of the slice, so a
//! parser over untrusted bytes cannot panic on a short input.

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let end = at.checked_add(2)?;
    b.get(at..end)?.try_into().ok().map(u16::from_be_bytes)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    b.get(at..end)?.try_into().ok().map(u32::from_be_bytes)
}

pub(crate) fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    u32_at(b, at).map(|v| v as i32)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    b.get(at..end)?.try_into().ok().map(u64::from_be_bytes)
}

pub(crate) fn i64_at(b: &[u8], at: usize) -> Option<i64> {
    u64_at(b, at).map(|v| v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end() {
        let b = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(u16_at(&b, 3), Some(0x789a));
        assert_eq!(u16_at(&b, 4), None);
        assert_eq!(u32_at(&b, 1), Some(0x3456_789a));
        assert_eq!(u32_at(&b, 2), None);
        assert_eq!(i32_at(&[0xff; 4], 0), Some(-1));
        assert_eq!(u64_at(&b, 0), None);
        assert_eq!(u64_at(&b, usize::MAX), None);
        assert_eq!(i64_at(&[0xff; 8], 0), Some(-1));
    }
}
