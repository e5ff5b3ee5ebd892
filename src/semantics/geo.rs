//! The options of the geo search commands as redis-server reads them
//! (`georadiusGeneric` in redis/src/geo.c), so a caller knows what a
//! well-formed command asks for and what shape its reply has.
//!
//! Members at exactly the same position share their geohash (the sorted-set
//! score) and therefore their distance. Redis finds them in sorted-set order
//! (ascending member bytes) and sorts results by distance with a stable
//! sort, so they come back adjacent and in ascending member order, whether
//! the reply is sorted ASC, DESC or not at all — unless COUNT cuts the
//! results short (Redis then uses a partial, unstable sort).

use bytes::Bytes;

use super::number::parse_i64;

/// The options of a well-formed geo search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GeoOptions {
    pub withdist: bool,
    pub withhash: bool,
    pub withcoord: bool,
    /// STORE/STOREDIST, or GEOSEARCHSTORE: the reply is a count.
    pub store: bool,
    /// COUNT, when it is a valid number.
    pub count: Option<i64>,
    pub any: bool,
}

impl GeoOptions {
    /// Each result is an array `[member, distance?, hash?, [lon, lat]?]`
    /// rather than a bare member.
    pub fn nested(&self) -> bool {
        self.withdist || self.withhash || self.withcoord
    }

    /// Where the hash sits in a nested result.
    pub fn hash_index(&self) -> usize {
        1 + usize::from(self.withdist)
    }
}

/// Where a geo search command's options start and which it reads (a column
/// of the command table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeoSyntax {
    /// Index of the first option (0 is the command name).
    pub base: usize,
    /// GEOSEARCH syntax: FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX options.
    pub search: bool,
    /// GEORADIUS[BYMEMBER]: STORE and STOREDIST options.
    pub store_allowed: bool,
    /// GEOSEARCHSTORE: always stores (and takes STOREDIST as a flag).
    pub stores: bool,
}

/// Reads the options of GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO], GEOSEARCH and
/// GEOSEARCHSTORE (described by `syntax`) as `georadiusGeneric` reads them.
/// `None` when it answers a syntax error. Numbers, units and the
/// combinations Redis refuses after reading (STORE with WITHDIST…) are not
/// checked here.
pub fn geo_options(syntax: GeoSyntax, args: &[Bytes]) -> Option<GeoOptions> {
    let GeoSyntax {
        base,
        search,
        store_allowed,
        stores,
    } = syntax;
    let mut o = GeoOptions {
        store: stores,
        ..GeoOptions::default()
    };
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let remaining = args.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let word = &args[base + i];
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        // How many arguments after `word` exist.
        let after = remaining - i - 1;
        if is("WITHDIST") {
            o.withdist = true;
        } else if is("WITHHASH") {
            o.withhash = true;
        } else if is("WITHCOORD") {
            o.withcoord = true;
        } else if is("ANY") {
            o.any = true;
        } else if is("ASC") || is("DESC") {
        } else if is("COUNT") && after >= 1 {
            o.count = parse_i64(&args[base + i + 1]);
            i += 1;
        } else if (is("STORE") || is("STOREDIST")) && after >= 1 && store_allowed {
            o.store = true;
            i += 1;
        } else if is("STOREDIST") && search && stores {
        } else if is("FROMMEMBER") && after >= 1 && search && !from_lonlat {
            from_member = true;
            i += 1;
        } else if is("FROMLONLAT") && after >= 2 && search && !from_member {
            from_lonlat = true;
            i += 2;
        } else if is("BYRADIUS") && after >= 2 && search && !by_box {
            by_radius = true;
            i += 2;
        } else if is("BYBOX") && after >= 3 && search && !by_radius {
            by_box = true;
            i += 3;
        } else {
            return None;
        }
        i += 1;
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Syntax;
    use crate::semantics::words as args;

    /// `line`'s options, read by its command's row of the table.
    fn geo(line: &str) -> Option<GeoOptions> {
        let args = args(line);
        let row = crate::commands::lookup(&args[0], None).expect("a command of the table");
        match row.extras.syntax {
            Syntax::Geo(syntax) => geo_options(syntax, &args),
            _ => None,
        }
    }

    #[test]
    fn options_follow_georadius_generic() {
        let o = geo("GEOSEARCH g FROMMEMBER m BYRADIUS 10 km ASC COUNT 3 ANY WITHDIST WITHCOORD")
            .unwrap();
        assert_eq!(
            o,
            GeoOptions {
                withdist: true,
                withcoord: true,
                count: Some(3),
                any: true,
                ..GeoOptions::default()
            }
        );
        assert_eq!(o.hash_index(), 2);
        let o = geo("GEORADIUS g 1 2 10 km STORE dst").unwrap();
        assert!(o.store && !o.nested());
        let o = geo("GEOSEARCHSTORE d g FROMLONLAT 1 2 BYBOX 1 1 km STOREDIST").unwrap();
        assert!(o.store);
        for (name, line) in [
            ("GEORADIUS_RO", "GEORADIUS_RO g 1 2 10 km STORE dst"),
            ("GEORADIUS", "GEORADIUS g 1 2 10 km COUNT"),
            ("GEORADIUS", "GEORADIUS g 1 2 10 km FROMMEMBER m"),
            (
                "GEOSEARCH",
                "GEOSEARCH g FROMMEMBER m FROMLONLAT 1 2 BYRADIUS 1 km",
            ),
            ("GEOSEARCH", "GEOSEARCH g FROMLONLAT 1"),
            (
                "GEOSEARCH",
                "GEOSEARCH g FROMMEMBER m BYRADIUS 1 km STOREDIST",
            ),
            ("GEOSEARCH", "GEOSEARCH g FROMMEMBER m BYRADIUS 1 km bogus"),
        ] {
            assert_eq!(geo(line), None, "{name}: {line}");
        }
    }
}
