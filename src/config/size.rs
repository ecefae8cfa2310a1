//! Byte sizes as HOCON writes them (`4096`, `"64 KiB"`, `"10m"`,
//! `"1 GB"`), for the keys that count bytes.

use serde::Deserializer;

/// Bytes per unit, by every name HOCON gives it: one letter and the
/// binary prefixes are powers of 1024, the decimal prefixes (`kB`, `MB`,
/// `kilobytes`...) powers of 1000.
fn unit(name: &str) -> Option<u64> {
    const K: u64 = 1024;
    Some(match name {
        "" | "b" | "B" | "byte" | "bytes" => 1,
        "kB" | "kilobyte" | "kilobytes" => 1000,
        "K" | "k" | "Ki" | "KiB" | "kibibyte" | "kibibytes" => K,
        "MB" | "megabyte" | "megabytes" => 1000 * 1000,
        "M" | "m" | "Mi" | "MiB" | "mebibyte" | "mebibytes" => K * K,
        "GB" | "gigabyte" | "gigabytes" => 1000 * 1000 * 1000,
        "G" | "g" | "Gi" | "GiB" | "gibibyte" | "gibibytes" => K * K * K,
        "TB" | "terabyte" | "terabytes" => 1000 * 1000 * 1000 * 1000,
        "T" | "t" | "Ti" | "TiB" | "tebibyte" | "tebibytes" => K * K * K * K,
        _ => return None,
    })
}

/// Parses a size: a number of bytes, or a number and a unit.
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, name) = (&text[..split], text[split..].trim());
    let per =
        unit(name).ok_or_else(|| format!("unknown size unit {name:?} (bytes, K/KiB, kB, M/MiB, MB, G/GiB, GB, T)"))?;
    let n: f64 = number.parse().map_err(|_| format!("{text:?} is not a size"))?;
    let bytes = n * per as f64;
    if bytes.fract() != 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is not a whole number of bytes"));
    }
    Ok(bytes as u64)
}

/// A byte size from an integer or a size string.
pub fn bytes<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<T, D::Error> {
    struct Size;
    impl serde::de::Visitor<'_> for Size {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number of bytes, or a size such as \"64 KiB\"")
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::custom("a size cannot be negative"))
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<u64, E> {
            parse(text).map_err(E::custom)
        }
    }
    let n = deserializer.deserialize_any(Size)?;
    T::try_from(n).map_err(|_| serde::de::Error::custom(format!("{n} bytes is too large")))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn keys_that_count_bytes_take_sizes() {
        let c = crate::config::from_toml_with_env(
            "[global.server]\nmax_body_bytes = \"128 KiB\"\nmax_header_bytes = 4096\n[sources.a]\ntype = \"json\"\nmaximum_body_size = \"8k\"\n",
            |_| None,
        )
        .unwrap();
        assert_eq!((c.global.server.max_body_bytes, c.global.server.max_header_bytes), (128 * 1024, 4096));
        let e = crate::config::from_toml_with_env("[global.server]\nmax_body_bytes = true\n", |_| None).unwrap_err();
        assert!(e.to_string().contains("a number of bytes, or a size such as"), "{e}");
    }

    #[test]
    fn every_unit_hocon_allows() {
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("64 KiB"), Ok(65536));
        assert_eq!(parse("64k"), Ok(65536));
        assert_eq!(parse("4 kB"), Ok(4000));
        assert_eq!(parse("10m"), Ok(10 << 20));
        assert_eq!(parse("1 megabytes"), Ok(1_000_000));
        assert_eq!(parse("1.5 KiB"), Ok(1536));
        assert_eq!(parse("2 GiB"), Ok(2 << 30));
        assert!(parse("1 furlong").unwrap_err().contains("unknown size unit"));
        assert!(parse("0.3 B").is_err());
    }
}
