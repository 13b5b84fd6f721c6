//! `stack new`: a service from a template folder, renamed, added to the
//! workspace members; `stack gen` then derives its wiring. `--remove` is
//! the exact inverse. The file edits are here (pure, unit-tested);
//! `main.rs` copies the folder and runs them.

use toml_edit::{Array, DocumentMut, Item, Value};

/// What a new service starts from: (name, folder, the app id to rename).
pub const TEMPLATES: [(&str, &str, &str); 3] = [
    ("blank", "templates/blank", "service-template"),
    ("grayscale", "image-api-grayscale", "image-api-grayscale"),
    ("events", "events-service", "events-service"),
];

/// Folders of the repository and the shipped services: never a new name,
/// never removed.
pub const RESERVED: [&str; 16] = [
    "web",
    "host",
    "stack",
    "tests",
    "bench",
    "scripts",
    "config",
    "docs",
    "target",
    "deploy",
    "manifest",
    "templates",
    "service-common",
    "dapr-sdk-wasi",
    "image-api-grayscale",
    "image-api-classify",
];

/// A service name: a Dapr app id and a crate name, at most 40 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !ok {
        return Err(format!(
            "'{name}' is not a valid service name: lower case letters, digits and single dashes, \
             starting with a letter, at most 40 characters (a Dapr app id and a crate name)"
        ));
    }
    if RESERVED.contains(&name) || name == "events-service" {
        return Err(format!(
            "'{name}' is a folder or service of this repository"
        ));
    }
    Ok(())
}

/// A copied file's text with the template's id (and its snake case, the
/// crate's name in Rust) replaced by the new name.
pub fn rename(text: &str, from: &str, to: &str) -> String {
    text.replace(from, to)
        .replace(&from.replace('-', "_"), &to.replace('-', "_"))
}

/// The copy's manifest: its own id, no pinned port (it gets the next free
/// ones), and, copied from a shipped service, its routes private (the
/// original's public paths are taken) and no subscriptions.
pub fn adapt_manifest(text: &str, name: &str, copy: bool) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("service.toml: {e}"))?;
    let app = doc
        .get_mut("app")
        .and_then(Item::as_table_like_mut)
        .ok_or("service.toml: no [app]")?;
    app.insert("id", toml_edit::value(name));
    app.remove("port");
    if copy {
        // The original consumes its topics; a copy does not, until its
        // manifest says so.
        if let Some(d) = doc.get_mut("dapr").and_then(Item::as_table_like_mut) {
            d.remove("subscribe");
            d.remove("dead_letters");
        }
        let app = doc
            .get_mut("app")
            .and_then(Item::as_table_like_mut)
            .ok_or("service.toml: no [app]")?;
        if let Some(routes) = app.get_mut("routes").and_then(Item::as_array_mut) {
            for r in routes.iter_mut() {
                if let Some(t) = r.as_inline_table_mut() {
                    t.remove("public");
                }
            }
        }
    }
    Ok(doc.to_string())
}

/// The workspace's Cargo.toml with `name` added to, or removed from, its
/// members, one per line as the file keeps them.
pub fn set_member(cargo_toml: &str, name: &str, present: bool) -> Result<String, String> {
    let mut doc: DocumentMut = cargo_toml.parse().map_err(|e| format!("Cargo.toml: {e}"))?;
    let members = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(Item::as_array_mut)
        .ok_or("Cargo.toml: no [workspace] members")?;
    let mut names: Vec<String> = members
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let has = names.iter().any(|n| n == name);
    match (present, has) {
        (true, true) => return Err(format!("'{name}' is already a workspace member")),
        (false, false) => return Err(format!("'{name}' is not a workspace member")),
        (true, false) => names.push(name.into()),
        (false, true) => names.retain(|n| n != name),
    }
    let mut fresh = Array::new();
    for n in names {
        let mut v = Value::from(n);
        v.decor_mut().set_prefix("\n    ");
        fresh.push_formatted(v);
    }
    fresh.set_trailing("\n");
    fresh.set_trailing_comma(true);
    *members = fresh;
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO: &str = "[workspace]\nresolver = \"3\"\nmembers = [\n    \"a\",\n    \"web\",\n]\n\n[workspace.package]\nversion = \"0.1.0\"\n";

    #[test]
    fn members_are_added_and_removed_byte_for_byte() {
        let added = set_member(CARGO, "new-one", true).expect("add");
        assert!(
            added.contains("members = [\n    \"a\",\n    \"web\",\n    \"new-one\",\n]\n"),
            "{added}"
        );
        assert_eq!(set_member(&added, "new-one", false).expect("remove"), CARGO);
        assert!(set_member(CARGO, "a", true).is_err());
        assert!(set_member(CARGO, "zzz", false).is_err());
    }

    #[test]
    fn names_are_checked() {
        for good in ["hello", "a1", "my-service-2"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        let long = "x".repeat(41);
        for bad in [
            "Bad_Name",
            "a--b",
            "-x",
            "x-",
            "9lives",
            "",
            long.as_str(),
            "web",
            "events-service",
            "templates",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_copy_is_renamed_and_its_routes_are_private() {
        let text = "# image-api-grayscale's manifest\n[app]\nid = \"image-api-grayscale\"\nport = 9005\nroutes = [\n    { path = \"/grayscale\", verbs = [\"POST\"], public = true },\n]\n";
        let out = adapt_manifest(text, "mine", true).expect("toml");
        assert!(out.contains("id = \"mine\""), "{out}");
        assert!(!out.contains("port") && !out.contains("public"), "{out}");
        assert!(
            out.starts_with("# image-api-grayscale's manifest"),
            "comments kept"
        );
        let blank = adapt_manifest(
            "[app]\nid = \"t\"\nroutes = [{ path = \"/t\", verbs = [\"GET\"], public = true }]\n",
            "b",
            false,
        )
        .expect("toml");
        assert!(blank.contains("public = true"), "{blank}");
        assert_eq!(
            rename(
                "use image_api_grayscale::x; // image-api-grayscale",
                "image-api-grayscale",
                "my-app"
            ),
            "use my_app::x; // my-app"
        );
    }
}
