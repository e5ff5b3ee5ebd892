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

/// Reads the options of GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO], GEOSEARCH and
/// GEOSEARCHSTORE (`name` as the command table spells it) as
/// `georadiusGeneric` reads them. `None` when it answers a syntax error, or
/// `name` is none of these. Numbers, units and the combinations Redis refuses
/// after reading (STORE with WITHDIST…) are not checked here.
pub fn geo_options(name: &str, args: &[Bytes]) -> Option<GeoOptions> {
    // (first option index, GEOSEARCH syntax, STORE allowed)
    let (base, search, store_allowed) = match name {
        "GEORADIUS" => (6, false, true),
        "GEORADIUS_RO" => (6, false, false),
        "GEORADIUSBYMEMBER" => (5, false, true),
        "GEORADIUSBYMEMBER_RO" => (5, false, false),
        "GEOSEARCH" => (2, true, false),
        "GEOSEARCHSTORE" => (3, true, false),
        _ => return None,
    };
    let mut o = GeoOptions {
        store: name == "GEOSEARCHSTORE",
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
        } else if is("STOREDIST") && search && name == "GEOSEARCHSTORE" {
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
    use crate::semantics::words as args;

    #[test]
    fn options_follow_georadius_generic() {
        let o = geo_options(
            "GEOSEARCH",
            &args("GEOSEARCH g FROMMEMBER m BYRADIUS 10 km ASC COUNT 3 ANY WITHDIST WITHCOORD"),
        )
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
        let o = geo_options("GEORADIUS", &args("GEORADIUS g 1 2 10 km STORE dst")).unwrap();
        assert!(o.store && !o.nested());
        let o = geo_options(
            "GEOSEARCHSTORE",
            &args("GEOSEARCHSTORE d g FROMLONLAT 1 2 BYBOX 1 1 km STOREDIST"),
        )
        .unwrap();
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
            assert_eq!(geo_options(name, &args(line)), None, "{line}");
        }
    }
}
