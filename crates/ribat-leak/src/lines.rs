//! Lines of a file, each at most [`MAX_LINE`] bytes: a 2 GB line is skipped while it is
//! read, never held.

use std::io::{BufRead, ErrorKind, Read};

/// The longest line kept. Longer lines are skipped and reported.
pub const MAX_LINE: usize = 1 << 20;

/// One line as read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Its bytes, without the line ending.
    Bytes(&'a [u8]),
    /// It was longer than the limit; this many bytes were skipped.
    TooLong(u64),
}

/// Reads lines of bounded length from any reader.
pub struct Lines<R> {
    inner: std::io::BufReader<R>,
    buf: Vec<u8>,
    max: usize,
    /// 1-based number of the last line returned.
    pub number: u64,
}

impl<R: Read> Lines<R> {
    /// Lines of `r`, each at most `max` bytes.
    pub fn new(r: R, max: usize) -> Self {
        Self {
            inner: std::io::BufReader::with_capacity(256 * 1024, r),
            buf: Vec::new(),
            max,
            number: 0,
        }
    }

    /// The next line and its 1-based number, or `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        let mut skipped: u64 = 0;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if skipped == 0 && self.buf.len() + take <= self.max {
                self.buf.extend_from_slice(&chunk[..take]);
            } else {
                // Over the limit: drop what was kept and count the rest as it passes.
                skipped += (self.buf.len() + take) as u64;
                self.buf.clear();
            }
            self.inner.consume(if done { take + 1 } else { take });
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if skipped > 0 {
            return Ok(Some((self.number, Line::TooLong(skipped))));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.number, Line::Bytes(&self.buf))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_and_the_next_ones_read() {
        let mut data = b"a,b\r\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 5000));
        data.extend_from_slice(b"\nlast");
        let mut l = Lines::new(&data[..], 100);
        assert_eq!(l.next_line().unwrap(), Some((1, Line::Bytes(&b"a,b"[..]))));
        assert_eq!(l.next_line().unwrap(), Some((2, Line::TooLong(5000))));
        assert_eq!(l.next_line().unwrap(), Some((3, Line::Bytes(&b"last"[..]))));
        assert_eq!(l.number, 3);
        assert_eq!(l.next_line().unwrap(), None);
    }

    #[test]
    fn empty_input_has_no_lines() {
        let mut l = Lines::new(&b""[..], 10);
        assert_eq!(l.next_line().unwrap(), None);
    }
}
