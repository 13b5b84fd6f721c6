//! The one routing table of a service: each path is listed once with the
//! method it takes, so "known path, other method" (405) and "unknown path"
//! (404) follow from the same list.

use crate::ApiError;
use http::Method;

/// A route: method, the paths it answers on, and what to do.
pub type Route<T> = (Method, &'static [&'static str], T);

/// The operation for `method` and `path`, or the JSON error to answer.
/// HEAD is answered like GET.
pub fn dispatch<T: Copy>(routes: &[Route<T>], method: &Method, path: &str) -> Result<T, ApiError> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let mut known = false;
    for (m, paths, op) in routes {
        if paths.contains(&path) {
            if m == method {
                return Ok(*op);
            }
            known = true;
        }
    }
    Err(if known {
        ApiError::MethodNotAllowed
    } else {
        ApiError::NotFound
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Op {
        Health,
        Read,
        Write,
    }

    const ROUTES: &[Route<Op>] = &[
        (Method::GET, &["/healthz", "/health"], Op::Health),
        (Method::GET, &["/events"], Op::Read),
        (Method::POST, &["/events", "/create_event"], Op::Write),
    ];

    #[test]
    fn method_and_path_pick_the_operation_or_the_error() {
        assert_eq!(dispatch(ROUTES, &Method::GET, "/health"), Ok(Op::Health));
        assert_eq!(dispatch(ROUTES, &Method::HEAD, "/healthz"), Ok(Op::Health));
        assert_eq!(dispatch(ROUTES, &Method::GET, "/events"), Ok(Op::Read));
        assert_eq!(
            dispatch(ROUTES, &Method::POST, "/create_event"),
            Ok(Op::Write)
        );
        let status = |m: &Method, p: &str| dispatch(ROUTES, m, p).map_err(|e| e.status());
        assert_eq!(status(&Method::DELETE, "/events"), Err(405));
        assert_eq!(status(&Method::POST, "/healthz"), Err(405));
        assert_eq!(status(&Method::GET, "/create_event"), Err(405));
        assert_eq!(status(&Method::GET, "/nope"), Err(404));
        assert_eq!(status(&Method::GET, "/events/"), Err(404));
    }
}
