//! Key-prefix routes: which backend serves a key. Routes are tried in the
//! configured order and the first whose prefix the key starts with wins; the
//! `""` route matches every key and is the default, for keyless commands too.
//!
//! A command runs on one route: a multi-key command whose keys fall in
//! different routes is refused with an error naming them, because no store
//! can make one atomic command span two stores.

use bytes::Bytes;

use crate::commands::Command;

/// One configured route, by position in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: Bytes,
    /// Index of the backend that serves it (in the router's backend list).
    pub backend: usize,
}

impl Route {
    /// How the route is named in messages: its prefix, quoted.
    pub fn label(&self) -> String {
        format!("\"{}\"", String::from_utf8_lossy(&self.prefix))
    }
}

/// A command whose keys belong to more than one route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "ERR sealcache: {command} has keys in more than one route ('{first_key}' in route {first_route}, '{other_key}' in route {other_route}); keys of one command must share a route"
)]
pub struct CrossRoute {
    pub command: String,
    pub first_key: String,
    pub first_route: String,
    pub other_key: String,
    pub other_route: String,
}

/// Why a list of routes cannot work (checked when the configuration loads).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteTableError {
    #[error("there is no default route: add {{prefix: \"\", backend: <name>}} as the last route")]
    NoDefault,
    #[error("two routes have the prefix {0}: keep one")]
    Duplicate(String),
    #[error(
        "route {later} can never match: route {earlier} comes first and matches every key it would. Fix: move route {later} above route {earlier}"
    )]
    Shadowed { earlier: String, later: String },
}

/// The routes, in order.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
    default: usize,
}

impl Router {
    /// Checks the route list: a default route, no duplicates, no route hidden
    /// behind an earlier one.
    pub fn new(routes: Vec<Route>) -> Result<Router, RouteTableError> {
        for (i, route) in routes.iter().enumerate() {
            for earlier in &routes[..i] {
                if earlier.prefix == route.prefix {
                    return Err(RouteTableError::Duplicate(route.label()));
                }
                if route.prefix.starts_with(&earlier.prefix) {
                    return Err(RouteTableError::Shadowed {
                        earlier: earlier.label(),
                        later: route.label(),
                    });
                }
            }
        }
        let default = routes
            .iter()
            .position(|r| r.prefix.is_empty())
            .ok_or(RouteTableError::NoDefault)?;
        Ok(Router { routes, default })
    }

    /// One route to one backend for every key.
    pub fn single(backend: usize) -> Router {
        Router {
            routes: vec![Route {
                prefix: Bytes::new(),
                backend,
            }],
            default: 0,
        }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Whether every key goes to one route (the common case: no key lookups needed).
    pub fn is_single(&self) -> bool {
        self.routes.len() == 1
    }

    /// The backends routes send keys to, each once, in route order (a
    /// backend that only stands in as a fallback is not among them).
    pub fn backends(&self) -> Vec<usize> {
        let mut seen = Vec::new();
        for route in &self.routes {
            if !seen.contains(&route.backend) {
                seen.push(route.backend);
            }
        }
        seen
    }

    /// Index of the default (`""`) route.
    pub fn default_route(&self) -> usize {
        self.default
    }

    /// Index of the route that serves `key`.
    pub fn route_of(&self, key: &[u8]) -> usize {
        self.routes
            .iter()
            .position(|r| key.starts_with(&r.prefix))
            .unwrap_or(self.default)
    }

    /// The route `cmd` runs on: its keys' route, or the default route for a
    /// keyless command.
    pub fn route_command(&self, cmd: &Command) -> Result<usize, CrossRoute> {
        if self.is_single() {
            return Ok(self.default);
        }
        let mut found: Option<(usize, &Bytes)> = None;
        for key in cmd.keys() {
            let route = self.route_of(key);
            match found {
                None => found = Some((route, key)),
                Some((first, first_key)) if first != route => {
                    return Err(CrossRoute {
                        command: cmd.name().replace('|', " "),
                        first_key: String::from_utf8_lossy(first_key).into_owned(),
                        first_route: self.routes[first].label(),
                        other_key: String::from_utf8_lossy(key).into_owned(),
                        other_route: self.routes[route].label(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(found.map_or(self.default, |(route, _)| route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &'static str, backend: usize) -> Route {
        Route {
            prefix: Bytes::from_static(prefix.as_bytes()),
            backend,
        }
    }

    fn cmd(words: &[&str]) -> Command {
        Command::parse(
            words
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect(),
        )
        .unwrap()
    }

    fn router() -> Router {
        Router::new(vec![route("tmp:", 1), route("session:", 2), route("", 0)]).unwrap()
    }

    #[test]
    fn first_matching_prefix_wins_and_the_default_takes_the_rest() {
        let r = router();
        assert_eq!(r.route_of(b"tmp:1"), 0);
        assert_eq!(r.route_of(b"session:9"), 1);
        assert_eq!(r.route_of(b"tmp"), 2);
        assert_eq!(r.route_of(b""), 2);
        assert_eq!(r.default_route(), 2);
        assert_eq!(r.backends(), [1, 2, 0]);
        let shared = Router::new(vec![route("a:", 0), route("", 0)]).unwrap();
        assert_eq!(shared.backends(), [0]);
    }

    #[test]
    fn commands_go_where_their_keys_are() {
        let r = router();
        assert_eq!(r.route_command(&cmd(&["GET", "tmp:a"])), Ok(0));
        assert_eq!(r.route_command(&cmd(&["MGET", "tmp:a", "tmp:b"])), Ok(0));
        assert_eq!(r.route_command(&cmd(&["PING"])), Ok(2), "keyless: default");
        assert_eq!(
            r.route_command(&cmd(&["ZUNIONSTORE", "tmp:d", "2", "tmp:a", "tmp:b"])),
            Ok(0),
            "movable keys are found"
        );
        // Channels are not keys.
        assert_eq!(r.route_command(&cmd(&["SPUBLISH", "tmp:c", "m"])), Ok(2));
        let err = r
            .route_command(&cmd(&["MSET", "tmp:a", "1", "user:1", "2"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ERR sealcache: MSET has keys in more than one route ('tmp:a' in route \"tmp:\", 'user:1' in route \"\"); keys of one command must share a route"
        );
    }

    #[test]
    fn bad_route_lists_are_refused() {
        assert_eq!(
            Router::new(vec![route("a:", 0)]).unwrap_err(),
            RouteTableError::NoDefault
        );
        assert_eq!(
            Router::new(vec![route("a:", 0), route("a:", 1), route("", 0)]).unwrap_err(),
            RouteTableError::Duplicate("\"a:\"".into())
        );
        assert_eq!(
            Router::new(vec![route("a:", 0), route("", 0), route("b:", 1)]).unwrap_err(),
            RouteTableError::Shadowed {
                earlier: "\"\"".into(),
                later: "\"b:\"".into()
            }
        );
        assert!(Router::new(vec![route("a:b", 0), route("a:", 1), route("", 0)]).is_ok());
        assert!(matches!(
            Router::new(vec![route("a:", 0), route("a:b", 1), route("", 0)]),
            Err(RouteTableError::Shadowed { .. })
        ));
    }
}
