//! Scalar texts as the Python reference writes them: the canonical text of a value that
//! drop conditions compare and `hash` hashes (`scrub/attributes.py` `text_of`,
//! `hash_value`), Python's `repr` of a double included, and the collector's hash bytes.

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when
/// the decimal exponent is in -4..16 (always with a fractional part), else as
/// `d.ddde+XX` (at least two exponent digits); `inf`, `-inf`, `nan`.
pub fn py_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` is the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let point = exp as usize + 1;
            if digits.len() > point {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            } else {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::py_repr;

    #[test]
    fn repr_matches_python() {
        for (x, want) in [
            (1.0, "1.0"), (0.1, "0.1"), (-2.5, "-2.5"), (123456.0, "123456.0"), (1e15, "1000000000000000.0"),
            (1e16, "1e+16"), (1.5e-5, "1.5e-05"), (0.0001, "0.0001"), (0.00012, "0.00012"), (1e-5, "1e-05"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (5e-324, "5e-324"), (-0.0, "-0.0"),
            (0.0, "0.0"), (f64::INFINITY, "inf"), (f64::NEG_INFINITY, "-inf"), (f64::NAN, "nan"),
            (123.456, "123.456"), (1234567890123456.7, "1234567890123456.8"), (12345678901234567.0, "1.2345678901234568e+16"),
        ] {
            assert_eq!(py_repr(x), want, "{x}");
        }
    }
}
