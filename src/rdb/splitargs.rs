//! Splitting a line into arguments as Redis's `sdssplitargs` does. Redis reads its AOF manifest
//! lines and a function library's first line (`#!lua name=...`) this way, so both are refused or
//! taken here exactly as the server takes them.
//!
//! The rules, on a C string (the first NUL byte ends the text):
//! - white space (C `isspace`) separates arguments; outside quotes only space, tab, `\n`, `\r`
//!   and the end of the text end one (a vertical tab or form feed inside a word is kept);
//! - in "double quotes": `\xHH` (two hex digits) is that byte, `\n \r \t \b \a` their control
//!   bytes, a backslash before any other byte is that byte;
//! - in 'single quotes': only `\'` is an escape;
//! - a closing quote must be followed by white space or the end; an unclosed quote, or a
//!   closing quote followed by anything else, makes the whole line invalid (`None`);
//! - quotes may start in the middle of a word (`a"b c"` is the one argument `ab c`).

use super::strtod::is_space;

/// The arguments of `line` (`None`: invalid, where Redis gets NULL). See the module doc.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    // The C string's terminator: 0 past the end.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut p = 0usize;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(out);
        }
        let mut cur = Vec::new();
        // The quote the word is inside of, if any.
        let mut quote: Option<u8> = None;
        loop {
            let c = at(p);
            if let Some(q) = quote {
                if c == 0 {
                    // The text ended inside quotes.
                    return None;
                } else if let (b'"', b'\\', b'x', Some(h), Some(l)) = (q, c, at(p + 1), hex(at(p + 2)), hex(at(p + 3)))
                {
                    cur.push(h * 16 + l);
                    p += 3;
                } else if q == b'"' && c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if q == b'\'' && c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == q {
                    // A closing quote ends the word, and must be followed by white space.
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        p += 1;
                        break;
                    }
                    0 => break,
                    b'"' | b'\'' => quote = Some(c),
                    _ => cur.push(c),
                }
            }
            p += 1;
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &[u8]) -> Option<Vec<Vec<u8>>> {
        split_args(x)
    }

    fn v(items: &[&[u8]]) -> Option<Vec<Vec<u8>>> {
        Some(items.iter().map(|i| i.to_vec()).collect())
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(s(b"  a  b "), v(&[b"a", b"b"]));
        assert_eq!(s(br#""a b" 'c\'d' "\x41\n""#), v(&[b"a b", b"c'd", b"A\n"]));
        assert_eq!(s(br#"a"b c" x"#), v(&[b"ab c", b"x"]));
        assert_eq!(s(br#""\q\"\\\xZZ""#), v(&[b"q\"\\xZZ"]));
        assert_eq!(s(b""), v(&[]));
        assert_eq!(s(b" \x0b\x0c "), v(&[]));
    }

    #[test]
    fn invalid_lines() {
        assert_eq!(s(br#""a"b"#), None);
        assert_eq!(s(b"'a'b"), None);
        assert_eq!(s(b"'a"), None);
        assert_eq!(s(b"\"a\\"), None);
    }

    #[test]
    fn a_vertical_tab_inside_a_word_is_kept() {
        // Leading white space is C isspace; a word ends only at space, tab, CR, LF or the end.
        assert_eq!(s(b"\x0ba\x0bb c"), v(&[b"a\x0bb", b"c"]));
    }

    #[test]
    fn the_first_nul_byte_ends_the_text() {
        assert_eq!(s(b"file a\0 seq 1"), v(&[b"file", b"a"]));
        assert_eq!(s(b"\0file"), v(&[]));
        assert_eq!(s(b"a \0b"), v(&[b"a"]));
        assert_eq!(s(b"\"a\0b\""), None);
    }
}
