//! The one `Accept` parser of the services: media types compared without
//! case and without parameters; a type the client rates `q=0` is refused.

/// Whether `accept` asks for any of `wanted` (lowercase `type/subtype`).
pub fn asks_for(accept: Option<&str>, wanted: &[&str]) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|entry| {
            let mut parts = entry.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            !refused && wanted.contains(&media.as_str())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_parameters_and_q_zero() {
        let png = &["image/png"];
        assert!(!asks_for(None, png));
        assert!(!asks_for(Some("*/*"), png));
        assert!(asks_for(Some("image/png"), png));
        assert!(asks_for(Some("IMAGE/PNG"), png));
        assert!(asks_for(Some("text/html, image/png;q=0.9"), png));
        assert!(asks_for(Some("image/png ; charset=x"), png));
        assert!(!asks_for(Some("image/png;q=0"), png));
        assert!(!asks_for(Some("image/png; Q=0.0"), png));
        assert!(!asks_for(Some("image/pngx"), png));
        assert!(asks_for(
            Some("Application/JSON; charset=utf-8"),
            &["application/json"]
        ));
    }
}
