//! Floats printed as Ruby prints them, so JSON and text output match Fluentd's byte for byte.
use std::io::Write;

/// Ruby's `Float#to_s`: shortest round-trip digits, fixed notation for exponents -4..16, else `1.0e+16`.
pub fn write_ruby_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    if f == 0.0 {
        out.extend_from_slice(if f.is_sign_negative() { b"-0.0" } else { b"0.0" });
        return;
    }
    // `{:e}` gives the shortest digits that round-trip: "d.ddde[-]x".
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let decpt = exp + 1;
    if f < 0.0 {
        out.push(b'-');
    }
    let d = digits.as_bytes();
    if decpt > 0 && decpt <= 16 {
        let decpt = decpt as usize;
        if d.len() <= decpt {
            out.extend_from_slice(d);
            out.extend(std::iter::repeat_n(b'0', decpt - d.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&d[..decpt]);
            out.push(b'.');
            out.extend_from_slice(&d[decpt..]);
        }
    } else if decpt <= 0 && decpt > -4 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
        out.extend_from_slice(d);
    } else {
        out.push(d[0]);
        out.push(b'.');
        if d.len() > 1 {
            out.extend_from_slice(&d[1..]);
        } else {
            out.push(b'0');
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.unsigned_abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: f64) -> String {
        let mut v = Vec::new();
        write_ruby_float(f, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn like_ruby_float_to_s() {
        assert_eq!(s(1.0), "1.0");
        assert_eq!(s(0.1), "0.1");
        assert_eq!(s(-2.5), "-2.5");
        assert_eq!(s(1e15), "1000000000000000.0");
        assert_eq!(s(1e16), "1.0e+16");
        assert_eq!(s(1e20), "1.0e+20");
        assert_eq!(s(0.0001), "0.0001");
        assert_eq!(s(1.5e-7), "1.5e-07");
        assert_eq!(s(123456.789), "123456.789");
    }
}
